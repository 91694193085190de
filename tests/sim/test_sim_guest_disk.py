"""A guest's files live on its disk, as on Windows (a sandbox's scratch VHDX holds its C:):
every system that attaches the same disk file sees the same files, across processes and
after a stop; formatting the disk or deleting it takes them away; a system with no
writable disk keeps a folder of its own until it stops (QA session 17, tester F10)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from simapi import Api, vm_doc

from hcs_sandbox.hcs import storage
from hcs_sandbox.sandbox.sandbox import Sandbox
from hcs_sandbox.sandbox.spec import BaseImage, SandboxSpec
from hcs_sandbox.sim.core import Simulator

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="guest pipes use select()")

MB = 1 << 20


def _doc(disk: Path, *, read_only: bool = False) -> dict[str, object]:
    attachment: dict[str, object] = {"Type": "VirtualDisk", "Path": str(disk)}
    if read_only:
        attachment["ReadOnly"] = True
    return vm_doc(GuestConnection={}, Devices={"Scsi": {"0": {"Attachments": {"0": attachment}}}})


def _run(api: Api, system_id: str, disk: Path | None, command: str, **kw: bool) -> bytes:
    """Start a system on ``disk`` (none: no disk), run ``command`` in it, stop it; the
    command's output."""
    if disk is not None:
        assert api.HcsGrantVmAccess(system_id, str(disk)) == 0
    handle = api.running(system_id, _doc(disk, **kw) if disk else None)
    try:
        process = api.spawn(handle, f"cmd /c {command}", CreateStdInPipe=False)
        assert process.hr == 0, process.doc
        out, err = process.communicate()
        process.wait_exit()
        process.close()
        return out + err
    finally:
        hr, doc = api.call("HcsTerminateComputeSystem", handle, None)
        assert hr == 0, doc
        api.close(handle)


def _write(api: Api, system_id: str, disk: Path | None, **kw: bool) -> None:
    assert _run(api, system_id, disk, "echo kept> C:\\k.txt", **kw) == b""


def _read(api: Api, system_id: str, disk: Path | None, **kw: bool) -> bytes:
    return _run(api, system_id, disk, "type C:\\k.txt", **kw)


MISSING = b"The system cannot find the file specified.\r\n"


def test_systems_on_the_same_disk_see_the_same_files(api: Api, tmp_path: Path) -> None:
    disk = tmp_path / "scratch.vhdx"
    storage.create_formatted_vhdx(disk, 64 * MB)
    _write(api, "first", disk)
    assert _read(api, "second", disk) == b"kept\r\n"  # another system, after a stop
    assert _read(api, "first", disk) == b"kept\r\n"  # the same id again
    other = tmp_path / "other.vhdx"
    storage.create_formatted_vhdx(other, 64 * MB)
    assert _read(api, "third", other) == MISSING  # another disk: its own files
    assert _read(api, "fourth", None) == MISSING  # no disk: a folder of its own


def test_a_read_only_disk_is_not_the_guests_drive(api: Api, tmp_path: Path) -> None:
    disk = tmp_path / "scratch.vhdx"
    storage.create_formatted_vhdx(disk, 64 * MB)
    _write(api, "rw", disk)
    assert _read(api, "ro", disk, read_only=True) == MISSING


def test_a_system_without_a_disk_loses_its_files_when_it_stops(api: Api) -> None:
    _write(api, "nodisk", None)
    assert _read(api, "nodisk", None) == MISSING


def test_formatting_the_disk_or_making_a_new_one_takes_the_files_away(
    api: Api, tmp_path: Path
) -> None:
    disk = tmp_path / "scratch.vhdx"
    storage.create_formatted_vhdx(disk, 64 * MB)
    _write(api, "vm", disk)
    with storage.open_vhd(disk) as vhd:
        storage.format_writable_layer_vhd(vhd)  # a new, empty volume on the same file
    assert _read(api, "vm", disk) == MISSING
    # A new disk at the same path (a deleted file's inode number may be given to it).
    for _ in range(3):
        _write(api, "vm", disk)
        disk.unlink()
        storage.create_formatted_vhdx(disk, 64 * MB)
        assert _read(api, "vm", disk) == MISSING


def test_a_deleted_disks_files_are_deleted(api: Api, sim: Simulator, tmp_path: Path) -> None:
    disk = tmp_path / "scratch.vhdx"
    storage.create_formatted_vhdx(disk, 64 * MB)
    _write(api, "vm", disk)
    disks = Path(sim.state_dir) / "disks"
    kept = list(disks.iterdir())
    assert len(kept) == 1
    disk.unlink()
    storage.create_formatted_vhdx(tmp_path / "next.vhdx", 64 * MB)  # a disk made: a sweep
    deadline = time.monotonic() + 10
    while kept[0].exists():
        assert time.monotonic() < deadline, list(disks.iterdir())
        time.sleep(0.05)
    trash = Path(sim.state_dir) / "trash"
    while trash.exists() and any(trash.iterdir()):
        assert time.monotonic() < deadline, list(trash.iterdir())
        time.sleep(0.05)


def test_a_persistent_sandbox_keeps_its_files_across_stop_and_start(tmp_path: Path) -> None:
    state = tmp_path / "state"
    sb = Sandbox.create(SandboxSpec(persistence="persistent"), state_dir=state)
    try:
        sb.start()
        assert sb.exec("cmd /c echo keep> C:\\k.txt", timeout=30).exit_code == 0
        sb.stop(timeout=10)
        sb.start()
        result = sb.exec("cmd /c type C:\\k.txt", timeout=30)
        assert (result.exit_code, result.stdout) == (0, b"keep\r\n"), result
    finally:
        sb.remove(force=True)
    # An ephemeral sandbox made afterwards starts with nothing of it.
    with Sandbox.run(SandboxSpec(), state_dir=state) as other:
        assert other.exec("cmd /c type C:\\k.txt", timeout=30).exit_code == 1


def test_the_cli_persistent_sandbox_keeps_its_files(sim_state_dir: Path, tmp_path: Path) -> None:
    """The QA session's commands, each in its own process."""
    env = {
        **os.environ,
        "HCS_SANDBOX_SIMULATOR": str(sim_state_dir),
        "HCS_SANDBOX_STATE_DIR": str(tmp_path / "state"),
    }

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "hcs_sandbox", *args],
            check=False,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    assert cli("run", "-d", "--persistent", "--name", "pz").returncode == 0
    try:
        assert cli("exec", "pz", "--", "cmd", "/c", "echo keep> C:\\k.txt").returncode == 0
        assert cli("stop", "pz").returncode == 0
        assert cli("start", "pz").returncode == 0
        typed = cli("exec", "pz", "--", "cmd", "/c", "type", "C:\\k.txt")
        assert (typed.returncode, typed.stdout) == (0, "keep\n"), typed
    finally:
        cli("rm", "-f", "pz")


# ---- a disk is the same disk only when it provably is (review RV-sim F1) -------------------------


def _template(tmp_path: Path) -> Path:
    """A scratch template, as an image base's UtilityVM\\SystemTemplate.vhdx: every copy of
    it carries the same bytes."""
    template = tmp_path / "template.vhdx"
    storage.create_formatted_vhdx(template, 64 * MB)
    return template


def test_a_copy_over_a_used_disk_has_no_files(api: Api, tmp_path: Path) -> None:
    """The template copied again onto the same path: the same file (inode), the same path,
    the template's bytes: a new, empty disk."""
    template = _template(tmp_path)
    disk = tmp_path / "scratch.vhdx"
    shutil.copyfile(template, disk)
    _write(api, "vm", disk)
    assert _read(api, "vm", disk) == b"kept\r\n"  # the same disk: its files
    inode = disk.stat().st_ino
    shutil.copyfile(template, disk)  # rewrites the file in place
    assert disk.stat().st_ino == inode
    assert _read(api, "vm", disk) == MISSING


def test_a_copy_at_a_used_disks_inode_by_another_path_has_no_files(
    api: Api, tmp_path: Path
) -> None:
    """A new sandbox's copy of the template given the inode of a removed sandbox's disk
    (ext4 gives a freed inode number to the next file made), here made certain with a hard
    link: another path, the same inode, the template's bytes."""
    template = _template(tmp_path)
    first, second = tmp_path / "first.vhdx", tmp_path / "second.vhdx"
    shutil.copyfile(template, first)
    _write(api, "first", first)
    os.link(first, second)
    first.unlink()
    shutil.copyfile(template, second)  # in place: the inode the first disk had
    assert _read(api, "second", second) == MISSING


def test_a_renamed_disk_counts_as_gone(api: Api, tmp_path: Path) -> None:
    """The path a disk's files were made for must still name it (simulator.md)."""
    disk = tmp_path / "scratch.vhdx"
    storage.create_formatted_vhdx(disk, 64 * MB)
    _write(api, "vm", disk)
    moved = tmp_path / "moved.vhdx"
    disk.rename(moved)
    assert _read(api, "vm", moved) == MISSING


def test_a_second_path_to_a_disk_is_the_same_disk(api: Api, tmp_path: Path) -> None:
    disk = tmp_path / "scratch.vhdx"
    storage.create_formatted_vhdx(disk, 64 * MB)
    _write(api, "vm", disk)
    link = tmp_path / "link.vhdx"
    os.link(disk, link)
    assert _read(api, "other", link) == b"kept\r\n"
    assert _read(api, "vm", disk) == b"kept\r\n"


def _image_base(root: Path) -> Path:
    """A fake container base image (as tests/sandbox/test_integration_plan.py's): its
    sandboxes' scratch disks are copies of UtilityVM\\SystemTemplate.vhdx."""
    folder = root / "image-base"
    (folder / "UtilityVM" / "Files").mkdir(parents=True)
    template = folder / "UtilityVM" / "SystemTemplate.vhdx"
    storage.create_vhdx(template, 1 << 30)
    with storage.open_vhd(template) as vhd:
        storage.format_writable_layer_vhd(vhd)
    return folder


def test_image_base_sandboxes_each_get_an_empty_guest(tmp_path: Path) -> None:
    """The review's script: one process makes and removes sandboxes on an image base, one
    after another; none sees the files of one removed before it (their scratch disks are
    copies of one template, and a removed one's inode is given to the next copy)."""
    folder = _image_base(tmp_path)
    state = tmp_path / "state"
    for i in range(4):
        sb = Sandbox.create(
            SandboxSpec(name=f"s{i}", base=BaseImage("image", str(folder))), state_dir=state
        )
        try:
            sb.start()
            seen = sb.exec(["cmd", "/c", "type", "C:\\secret.txt"], timeout=30)
            assert (seen.exit_code, seen.stdout) == (1, b""), (i, seen)
            made = sb.exec(["cmd", "/c", f"echo secret {i}> C:\\secret.txt"], timeout=30)
            assert made.exit_code == 0, made
        finally:
            sb.remove(force=True)
            sb.close()


# ---- when a removed sandbox's files go (review RV-sim F2) ---------------------------------------


def _guest_files(sim_dir: Path) -> list[Path]:
    return sorted((sim_dir / "disks").glob("*/C/**/*"))


def test_a_removed_sandboxs_files_go_in_the_same_process(sim: Simulator, tmp_path: Path) -> None:
    """No disk is made afterwards (an image base copies its scratch disk): the stop of the
    system wakes the sweep, which looks again once the library has deleted the disk."""
    folder = _image_base(tmp_path)
    sb = Sandbox.create(
        SandboxSpec(name="gone", base=BaseImage("image", str(folder))), state_dir=tmp_path / "st"
    )
    try:
        sb.start()
        assert sb.exec(["cmd", "/c", "echo s> C:\\secret.txt"], timeout=30).exit_code == 0
        assert _guest_files(Path(sim.state_dir))
    finally:
        sb.remove(force=True)
        sb.close()
    deadline = time.monotonic() + 10
    while _guest_files(Path(sim.state_dir)):
        assert time.monotonic() < deadline, _guest_files(Path(sim.state_dir))
        time.sleep(0.05)


def test_the_cli_rm_takes_the_guest_files_away(sim_state_dir: Path, tmp_path: Path) -> None:
    """``rm`` in its own process: the files are gone when it has ended."""
    env = {
        **os.environ,
        "HCS_SANDBOX_SIMULATOR": str(sim_state_dir),
        "HCS_SANDBOX_STATE_DIR": str(tmp_path / "state"),
    }

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "hcs_sandbox", *args],
            check=False,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    assert cli("run", "-d", "--name", "h").returncode == 0
    try:
        made = cli("exec", "h", "--", "cmd", "/c", "echo s> C:\\secret.txt")
        assert made.returncode == 0, made
        assert _guest_files(sim_state_dir)
    finally:
        removed = cli("rm", "-f", "h")
    assert removed.returncode == 0, removed
    assert _guest_files(sim_state_dir) == []
