"""Base resolution and per-sandbox files (storage.py)."""

from __future__ import annotations

import ctypes
import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from hcs_sandbox import errors
from hcs_sandbox.sandbox import storage


def test_host_base_found_in_the_simulators_program_data() -> None:
    base = storage.find_host_base()
    assert base.kind == "host"
    assert base.os_files is not None
    assert Path(base.os_files).is_dir()
    assert Path(base.os_files).parts[-2:] == ("BaseLayer", "Files")
    assert "BaseImages" in Path(base.path).parts


def test_no_windows_sandbox_gives_the_remedy(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(storage, "_program_data_text", lambda: str(tmp_path))
    with pytest.raises(errors.StorageError) as info:
        storage.find_host_base()
    assert "enable the Windows Sandbox feature" in str(info.value)


def test_image_base_needs_utility_vm(tmp_path: Path) -> None:
    with pytest.raises(errors.StorageError, match="UtilityVM"):
        storage.resolve_base("image", str(tmp_path))
    (tmp_path / "UtilityVM" / "Files").mkdir(parents=True)
    with pytest.raises(errors.StorageError, match=r"SystemTemplate\.vhdx"):
        storage.resolve_base("image", str(tmp_path))
    (tmp_path / "UtilityVM" / "SystemTemplate.vhdx").write_bytes(b"vhdx")
    base = storage.resolve_base("image", str(tmp_path))
    assert base.template_vhdx == str(tmp_path / "UtilityVM" / "SystemTemplate.vhdx")


def test_vhdx_base_checks(tmp_path: Path) -> None:
    with pytest.raises(errors.StorageError, match="does not exist"):
        storage.resolve_base("vhdx", str(tmp_path / "nope.vhdx"))
    other = tmp_path / "disk.vhd"
    other.write_bytes(b"x")
    with pytest.raises(errors.StorageError, match=r"not a \.vhdx"):
        storage.resolve_base("vhdx", str(other))


def test_scratch_methods(tmp_path: Path) -> None:
    created = tmp_path / "a" / "created.vhdx"
    storage.make_scratch_disk(storage.ScratchDisk(str(created), "create", 1024**3))
    assert created.is_file()
    child = tmp_path / "child.vhdx"
    storage.make_scratch_disk(storage.ScratchDisk(str(child), "differencing", 0, str(created)))
    assert child.is_file()
    before = created.read_bytes()
    copy = tmp_path / "copy.vhdx"
    storage.make_scratch_disk(storage.ScratchDisk(str(copy), "copy", 0, str(created)))
    assert copy.read_bytes() == before
    assert created.read_bytes() == before  # the parent is never written


def test_differencing_scratch_is_made_with_maximum_size_zero(
    tmp_path: Path, sim: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # CREATE_VIRTUAL_DISK_PARAMETERS: "If a ParentPath is specified, this value
    # [MaximumSize] must be zero." A differencing ScratchDisk keeps its size_bytes (the
    # default 20 GiB, or what an older plan recorded): it is not passed to virtdisk.
    from hcs_sandbox.sim.exports import CREATE_VIRTUAL_DISK_PARAMETERS_V2

    parent = tmp_path / "base.vhdx"
    storage.make_scratch_disk(storage.ScratchDisk(str(parent), "create", 1024**3))
    seen: list[tuple[int, str | None]] = []
    real = sim.CreateVirtualDisk

    def recording(*args: Any) -> Any:
        params = ctypes.cast(args[6], ctypes.POINTER(CREATE_VIRTUAL_DISK_PARAMETERS_V2)).contents
        seen.append((int(params.MaximumSize), params.ParentPath))
        return real(*args)

    monkeypatch.setattr(sim, "CreateVirtualDisk", recording)
    child = tmp_path / "child.vhdx"
    disk = storage.ScratchDisk(str(child), "differencing", parent=str(parent))
    assert disk.size_bytes == storage.DEFAULT_SCRATCH_BYTES
    storage.make_scratch_disk(disk)
    assert seen == [(0, str(parent))]
    assert child.is_file()


def test_created_scratch_is_formatted_through_the_handle_that_made_it(
    tmp_path: Path, sim: Any
) -> None:
    """``create``: CreateVirtualDisk, HcsFormatWritableLayerVhd on the handle it returned,
    CloseHandle (hcsshim computestorage/helpers.go SetupContainerBaseLayer); the disk just
    made is not opened again (OpenVirtualDisk), and no handle is left open."""
    import json

    before = sim.calls()
    target = tmp_path / "f" / "scratch.vhdx"
    storage.make_scratch_disk(storage.ScratchDisk(str(target), "create", 1024**3))
    after = sim.calls()
    made = {name: after.get(name, 0) - before.get(name, 0) for name in after}
    assert made.get("CreateVirtualDisk") == 1
    assert made.get("HcsFormatWritableLayerVhd") == 1
    assert made.get("CloseHandle") == 1
    assert made.get("OpenVirtualDisk", 0) == 0
    assert sim.leaks() == {}
    assert json.loads(target.read_bytes())["Formatted"] is True  # the simulator's disk file


def test_failed_scratch_leaves_no_file(tmp_path: Path, sim: object) -> None:
    sim.inject("HcsFormatWritableLayerVhd", hresult=0x80004005)  # type: ignore[attr-defined]
    target = tmp_path / "s.vhdx"
    with pytest.raises(errors.HcsError):
        storage.make_scratch_disk(storage.ScratchDisk(str(target), "create", 1024**3))
    assert not target.exists()


def test_remove_path_is_idempotent(tmp_path: Path) -> None:
    d = tmp_path / "d"
    (d / "x").mkdir(parents=True)
    assert storage.remove_path(d) is True
    assert storage.remove_path(d) is False


def test_remove_path_tries_again_when_a_file_appears_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A late writer (a logon thread's last log line) adds a file while the folder is being
    removed: the final rmdir fails with ENOTEMPTY once, and the removal goes on."""
    import errno
    import shutil

    folder = tmp_path / "sb"
    folder.mkdir()
    (folder / "a").write_text("x")
    real = shutil.rmtree
    calls: list[str] = []

    def racing_rmtree(path: str, **handler: Any) -> None:  # onerror= / onexc=, as rmtree
        calls.append(path)
        if len(calls) == 1:
            real(path, **handler)  # what was there is gone...
            os.mkdir(path)  # ...but a writer re-made an entry before the rmdir
            (Path(path) / "sandbox.log").write_text("late line\n")
            raise OSError(errno.ENOTEMPTY, "Directory not empty", path)
        real(path, **handler)

    monkeypatch.setattr(storage.shutil, "rmtree", racing_rmtree)
    assert storage.remove_path(folder) is True
    assert not folder.exists()
    assert len(calls) == 2


def test_remove_path_reports_other_errors_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    folder = tmp_path / "sb"
    folder.mkdir()
    (folder / "left").write_text("x")  # not empty: the plain rmdir fails, the tree is removed
    calls: list[str] = []

    def denied(path: str, **handler: Any) -> None:  # onerror= / onexc=, as rmtree
        calls.append(path)
        raise OSError(errno.EACCES, "Permission denied", path)

    monkeypatch.setattr(storage.shutil, "rmtree", denied)
    with pytest.raises(errors.StorageError, match="could not delete"):
        storage.remove_path(folder)
    assert len(calls) == 1


def test_remove_path_removes_an_empty_folder_without_walking_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The usual case at remove (the files went first): one rmdir, no tree walk."""
    folder = tmp_path / "sb"
    folder.mkdir()

    def walked(path: str) -> None:
        raise AssertionError(f"rmtree({path}) for an empty folder")

    monkeypatch.setattr(storage.shutil, "rmtree", walked)
    assert storage.remove_path(folder) is True
    assert not folder.exists()


def _count_calls(monkeypatch: pytest.MonkeyPatch, *names: str) -> dict[str, int]:
    """How often ``os.<name>`` is called from now on (each still does its work)."""
    counts = dict.fromkeys(names, 0)
    for name in names:
        real = getattr(os, name)

        def counted(*args: Any, _real: Any = real, _name: str = name, **kwargs: Any) -> Any:
            counts[_name] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(os, name, counted)
    return counts


def test_remove_path_deletes_a_file_in_one_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file (a sandbox's disk, its guest state file) is unlinked without an ``lstat``
    first: one system call per file, not two (s13-teardown).  Gone already: False, as
    before."""
    f = tmp_path / "sandbox.vhdx"
    f.write_bytes(b"x")
    counts = _count_calls(monkeypatch, "lstat", "stat", "unlink")
    assert storage.remove_path(f) is True
    assert counts == {"lstat": 0, "stat": 0, "unlink": 1}
    assert not f.exists()
    assert storage.remove_path(f) is False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux's unlink says EISDIR")
def test_remove_path_takes_a_folder_from_the_unlink_error_on_linux(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Linux's unlink of a folder fails with EISDIR: the folder is removed without an
    ``lstat`` either (s13-teardown)."""
    folder = tmp_path / "sb"
    folder.mkdir()
    counts = _count_calls(monkeypatch, "lstat", "stat", "rmdir")
    assert storage.remove_path(folder) is True
    assert counts == {"lstat": 0, "stat": 0, "rmdir": 1}
    assert not folder.exists()


def test_remove_path_removes_a_folder_that_unlink_refuses_as_windows_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Windows' unlink of a folder fails with ERROR_ACCESS_DENIED (5), which is also what a
    file held open gives: the path is looked at, and a folder is removed as a folder (not
    retried as a held file); a link to a folder is unlinked, its folder kept."""
    from winhold import windows_error

    folder = tmp_path / "sb"
    (folder / "logs").mkdir(parents=True)
    (folder / "logs" / "a").write_text("x")
    kept = tmp_path / "kept"
    kept.mkdir()
    link = tmp_path / "link"
    link.symlink_to(kept, target_is_directory=True)
    real_unlink = os.unlink
    refused: list[str] = []

    def windows_unlink(path: Any, *args: Any, **kwargs: Any) -> None:
        if os.path.isdir(path) and not os.path.islink(path):
            refused.append(os.fspath(path))
            raise windows_error(path, 5)
        real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", windows_unlink)
    monkeypatch.setattr(storage, "_sleep", lambda seconds: pytest.fail("no wait for a folder"))
    assert storage.remove_path(folder) is True
    assert not folder.exists()
    assert os.fspath(folder) in refused
    assert storage.remove_path(link) is True
    assert not link.exists()
    assert kept.is_dir()


def test_remove_path_gives_a_files_unlink_error_once_per_attempt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file the unlink cannot delete (not held: no retry) gets that unlink's error, from
    one unlink, with no earlier error chained to it."""
    import errno

    f = tmp_path / "sandbox.vmgs"
    f.write_bytes(b"x")
    calls: list[str] = []

    def refuse(path: Any, *args: Any, **kwargs: Any) -> None:
        calls.append(os.fspath(path))
        raise PermissionError(errno.EPERM, "Operation not permitted", os.fspath(path))

    monkeypatch.setattr(os, "unlink", refuse)
    with pytest.raises(errors.StorageError, match="Operation not permitted") as caught:
        storage.remove_path(f)
    assert len(calls) == 1
    cause = caught.value.__cause__
    assert isinstance(cause, PermissionError)
    assert cause.__context__ is None
    assert f.exists()


def test_is_dir_answers_as_pathlib(tmp_path: Path) -> None:
    folder = tmp_path / "d"
    folder.mkdir()
    file = tmp_path / "f"
    file.write_bytes(b"x")
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    (tmp_path / "dirlink").symlink_to(folder)
    cases = [folder, file, tmp_path / "missing", file / "below", tmp_path / "loop"]
    cases.append(tmp_path / "dirlink")
    for path in cases:
        assert storage._is_dir(str(path)) == path.is_dir(), path
    assert storage._is_dir("bad\0path") is False


def test_host_base_follows_the_folder_as_it_changes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Nothing about the base is kept between calls: a base removed, added or updated is
    # seen by the next call (only the pure join of ProgramData and BaseImages is cached).
    monkeypatch.setattr(storage, "_program_data_text", lambda: str(tmp_path))
    root = tmp_path.joinpath(*storage.BASE_IMAGES_SUBDIR)
    with pytest.raises(errors.StorageError, match="does not exist"):
        storage.find_host_base()
    root.mkdir(parents=True)
    with pytest.raises(errors.StorageError, match="no folder under"):
        storage.find_host_base()
    old = root / "old" / "BaseLayer" / "Files"
    old.mkdir(parents=True)
    os.utime(old, (1_000_000, 1_000_000))
    assert storage.find_host_base().path == str(root / "old")
    new = root / "new" / "BaseLayer" / "Files"
    new.mkdir(parents=True)
    assert storage.find_host_base() == storage.ResolvedBase(
        kind="host", path=str(root / "new"), os_files=str(new)
    )
    new.rmdir()
    assert storage.find_host_base().path == str(root / "old")
    old.rmdir()
    with pytest.raises(errors.StorageError, match="no folder under"):
        storage.find_host_base()
    # Another ProgramData (another backend): its own folder.
    other = tmp_path / "other"
    monkeypatch.setattr(storage, "_program_data_text", lambda: str(other))
    with pytest.raises(
        errors.StorageError,
        match=re.escape(str(other.joinpath(*storage.BASE_IMAGES_SUBDIR))),
    ):
        storage.find_host_base()


def test_disk_files_make_missing_parent_folders(tmp_path: Path) -> None:
    state = tmp_path / "x" / "y" / "s.vmgs"
    storage.create_guest_state_file(str(state))
    assert state.is_file()
    disk = tmp_path / "p" / "q" / "s.vhdx"
    storage.make_scratch_disk(storage.ScratchDisk(str(disk), "create", 1024**3))
    assert disk.is_file()
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        storage.create_guest_state_file("plain.vmgs")  # no folder part: the current one
    finally:
        os.chdir(cwd)
    assert (tmp_path / "plain.vmgs").is_file()
    os.unlink(tmp_path / "plain.vmgs")


def test_base_images_text_is_the_path_join(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # The folder find_host_base looks in (text, no Path per call) is base_images_dir()'s,
    # for the backend's ProgramData and for the environment variable's (no backend getter).
    monkeypatch.setattr(storage, "_ROOT_TEXT", {})
    assert storage._base_images_text() == str(storage.base_images_dir())
    assert storage.program_data_dir() == Path(storage._program_data_text())
    for text in (str(tmp_path) + os.sep, str(tmp_path / "a")):
        monkeypatch.setattr(storage, "_program_data_text", lambda text=text: text)
        assert storage._base_images_text() == str(Path(text).joinpath(*storage.BASE_IMAGES_SUBDIR))
        assert storage._base_images_text() == str(storage.base_images_dir())
