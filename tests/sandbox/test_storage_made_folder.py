"""The per-create disk files in a folder the caller has just made (s13-calls): no second
look for the folder, and the hcs modules looked up once (the module, so a test's
replacement of one of its functions is still obeyed)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from hcs_sandbox.hcs import service
from hcs_sandbox.sandbox import storage

_isdir = os.path.isdir


def _no_isdir_of(folder: str) -> Any:
    """``os.path.isdir`` that fails the test for ``folder`` (the made folder) and answers
    for other paths (the simulator's own folder, looked at when its backend starts)."""

    def isdir(path: Any) -> bool:
        if os.path.normpath(os.fspath(path)) == os.path.normpath(folder):
            raise AssertionError(f"the made folder was looked at again: {path}")
        return _isdir(path)

    return isdir


def test_files_in_the_made_folder_are_made_without_looking_for_it(
    tmp_path: Path, sim: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = str(tmp_path / "box")
    os.mkdir(folder)
    disk = os.path.join(folder, "sandbox.vhdx")
    vmgs = os.path.join(folder, "sandbox.vmgs")
    monkeypatch.setattr(storage.os.path, "isdir", _no_isdir_of(folder))
    storage.make_scratch_disk(storage.ScratchDisk(disk, "create", 1024**3), made_folder=folder)
    storage.create_guest_state_file(vmgs, made_folder=folder)
    monkeypatch.undo()
    assert os.path.isfile(disk)
    assert os.path.isfile(vmgs)


def test_a_path_outside_the_made_folder_still_gets_its_parent_made(
    tmp_path: Path, sim: Any
) -> None:
    folder = str(tmp_path / "box")
    os.mkdir(folder)
    disk = tmp_path / "elsewhere" / "sandbox.vhdx"
    vmgs = tmp_path / "box" / "sub" / "sandbox.vmgs"
    storage.make_scratch_disk(storage.ScratchDisk(str(disk), "create", 1024**3), made_folder=folder)
    storage.create_guest_state_file(str(vmgs), made_folder=folder)
    assert disk.is_file()
    assert vmgs.is_file()


def test_the_hcs_functions_are_looked_up_in_their_module_at_each_call(
    tmp_path: Path, sim: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[str, ...]] = []
    storage.grant_vm_access("vm-0", str(tmp_path))  # (the modules are remembered now)
    monkeypatch.setattr(service, "grant_vm_access", lambda *a: seen.append(("grant", *a)))
    monkeypatch.setattr(
        service, "create_empty_guest_state_file", lambda *a: seen.append(("vmgs", *a))
    )
    target = str(tmp_path / "x.vmgs")
    storage.grant_vm_access("vm-1", target)
    storage.create_guest_state_file(target)
    assert seen == [("grant", "vm-1", target), ("vmgs", target)]
