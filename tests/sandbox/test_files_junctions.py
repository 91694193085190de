"""cp and directory junctions (RV30 F1).

On Windows ``os.path.islink`` / ``Path.is_symlink`` are False for a directory junction on
Python 3.10/3.11, ``os.walk(followlinks=False)`` descends into one, and ``os.lstat`` reports
it as a directory whose ``st_reparse_tag`` is ``IO_REPARSE_TAG_MOUNT_POINT`` (Python docs,
``os.stat_result.st_reparse_tag``; bpo-37834).  Linux has no junctions, so these tests make a
real folder look like one: ``os.lstat`` of that folder gains the junction's tag and nothing
else changes (``islink`` stays False and ``os.walk`` descends into it, as on Windows), and
``os.path.realpath`` of it answers the junction's target.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hcs_sandbox import errors
from hcs_sandbox.sandbox import files
from hcs_sandbox.sandbox.sandbox import Sandbox
from hcs_sandbox.sandbox.spec import SandboxSpec

MOUNT_POINT = 0xA0000003  # IO_REPARSE_TAG_MOUNT_POINT, [MS-FSCC] 2.1.2.1
SYMLINK = 0xA000000C  # IO_REPARSE_TAG_SYMLINK
CLOUD = 0x9000001A  # IO_REPARSE_TAG_CLOUD (OneDrive files): not a link


class _Tagged:
    """A stat result with a Windows reparse tag added (``st_mode`` stays a folder's)."""

    def __init__(self, real: os.stat_result, tag: int) -> None:
        self._real = real
        self.st_reparse_tag = tag
        self.st_file_attributes = 0x410  # FILE_ATTRIBUTE_DIRECTORY | REPARSE_POINT

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


@pytest.fixture
def junctions(monkeypatch: pytest.MonkeyPatch) -> dict[str, tuple[int, str | None]]:
    """``{folder: (tag, realpath or None)}``: the folders that look like reparse points."""
    table: dict[str, tuple[int, str | None]] = {}
    real_lstat, real_realpath = os.lstat, os.path.realpath

    def lstat(path: Any, *args: Any, **kwargs: Any) -> Any:
        st = real_lstat(path, *args, **kwargs)
        found = table.get(os.path.abspath(os.fspath(path)))
        return _Tagged(st, found[0]) if found else st

    def realpath(path: Any, *args: Any, **kwargs: Any) -> Any:
        found = table.get(os.path.abspath(os.fspath(path)))
        if found and found[1] is not None:
            return found[1]
        return real_realpath(path, *args, **kwargs)

    monkeypatch.setattr(os, "lstat", lstat)
    monkeypatch.setattr(os.path, "realpath", realpath)
    return table


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("alpha")
    (root / "sub" / "b.txt").write_text("beta")
    (root / "jn").mkdir()  # stands for the junction
    (root / "jn" / "behind.txt").write_text("what the junction shows")
    return root


def _staged(tree: Path, tmp_path: Path) -> list[str]:
    staging = tmp_path / "staging"
    staging.mkdir()
    files._stage_host_source(str(tree), staging)
    return sorted(
        os.path.relpath(os.path.join(d, n), staging)
        for d, dirs, names in os.walk(staging)
        for n in [*dirs, *names]
    )


def test_the_link_test_knows_junctions_and_not_other_reparse_points(
    tmp_path: Path, junctions: dict[str, tuple[int, str | None]]
) -> None:
    for name, tag in (("jn", MOUNT_POINT), ("sl", SYMLINK), ("cloud", CLOUD)):
        (tmp_path / name).mkdir()
        junctions[str(tmp_path / name)] = (tag, None)
    (tmp_path / "plain").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "plain")
    assert files._link_kind(tmp_path / "jn") == "junction"
    assert files._link_kind(tmp_path / "sl") == "symbolic link"
    assert files._link_kind(tmp_path / "link") == "symbolic link"
    assert files._link_kind(tmp_path / "cloud") is None  # a OneDrive folder is copied
    assert files._link_kind(tmp_path / "plain") is None
    assert files._link_kind(tmp_path / "missing") is None


def test_copy_in_refuses_a_junction_that_leaves_the_tree(
    tree: Path, tmp_path: Path, junctions: dict[str, tuple[int, str | None]]
) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    junctions[str(tree / "jn")] = (MOUNT_POINT, str(outside))
    with pytest.raises(errors.SpecError) as caught:
        _staged(tree, tmp_path)
    assert caught.value.message == (
        f"cannot copy {tree / 'jn'}: it is a junction to {outside}, outside the folder being copied"
    )


def test_copy_in_skips_a_junction_inside_the_tree_and_does_not_descend(
    tree: Path, tmp_path: Path, junctions: dict[str, tuple[int, str | None]]
) -> None:
    junctions[str(tree / "jn")] = (MOUNT_POINT, str(tree / "sub"))
    # As a folder symbolic link inside the tree: its target's files are copied anyway.
    assert _staged(tree, tmp_path) == ["src", "src/a.txt", "src/sub", "src/sub/b.txt"]


def test_copy_in_copies_a_cloud_reparse_folder(
    tree: Path, tmp_path: Path, junctions: dict[str, tuple[int, str | None]]
) -> None:
    junctions[str(tree / "jn")] = (CLOUD, None)
    assert "src/jn/behind.txt" in _staged(tree, tmp_path)


def test_place_on_host_never_writes_through_a_junction(
    tmp_path: Path, junctions: dict[str, tuple[int, str | None]]
) -> None:
    staged = tmp_path / "staged" / "work"
    (staged / "sub").mkdir(parents=True)
    (staged / "sub" / "b.txt").write_text("beta")
    target = tmp_path / "out" / "work"
    (target / "sub").mkdir(parents=True)  # an existing sub-folder that is a junction
    junctions[str(target / "sub")] = (MOUNT_POINT, None)
    with pytest.raises(errors.StorageError, match="refusing to write through the junction"):
        files._place_on_host(staged, target, True)
    assert os.listdir(target / "sub") == []
    junctions[str(target)] = (MOUNT_POINT, None)  # the destination folder itself
    with pytest.raises(errors.StorageError, match="refusing to write through the junction"):
        files._place_on_host(staged, target, True)


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox.run(SandboxSpec(name="junctions")) as sandbox:
        yield sandbox


def test_copy_out_refuses_a_junction_destination(
    sb: Sandbox, tmp_path: Path, junctions: dict[str, tuple[int, str | None]]
) -> None:
    source = tmp_path / "a.txt"
    source.write_text("alpha")
    sb.copy_in(str(source), "C:\\a.txt")
    destination = tmp_path / "victim"  # a junction to, say, C:\Windows\System32
    destination.mkdir()
    junctions[str(destination)] = (MOUNT_POINT, None)
    with pytest.raises(errors.StorageError) as caught:
        sb.copy_out("C:\\a.txt", str(destination))
    assert caught.value.message == f"refusing to write through the junction {destination}"
    assert os.listdir(destination) == []
    assert os.listdir(Path(sb.directory) / "transfer") == []
