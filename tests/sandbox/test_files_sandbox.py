"""Runtime map/unmap and cp through the simulator."""

from __future__ import annotations

import os
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hcs_sandbox import errors
from hcs_sandbox.sandbox.sandbox import Sandbox
from hcs_sandbox.sandbox.spec import SandboxSpec


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox.run(SandboxSpec(name="files")) as sandbox:
        yield sandbox


@pytest.fixture
def host(tmp_path: Path) -> Path:
    root = tmp_path / "host"
    (root / "src" / "sub").mkdir(parents=True)
    (root / "src" / "a.txt").write_bytes(b"alpha\r\n")
    (root / "src" / "sub" / "b.bin").write_bytes(bytes(range(256)) * 10)
    return root


def _share_names(sim: Any, sb: Sandbox) -> list[str]:
    record = sim.store.read("systems", sb.system_id)
    return [s["Name"] for s in record.get("Shares") or []]


# -------------------------------------------------------------------- map / unmap


def test_map_read_only_by_default(sb: Sandbox, host: Path, sim: Any) -> None:
    sb.map(str(host / "src"), "C:\\data\\src")
    assert sb.exec("cmd /c type C:\\data\\src\\a.txt").stdout == b"alpha\r\n"
    write = sb.exec("cmd /c echo nope > C:\\data\\src\\new.txt")
    assert write.exit_code != 0
    assert "Access is denied" in write.stderr_text
    assert not (host / "src" / "new.txt").exists()
    shown = sb.inspect()["mappings"]
    assert shown == [
        {
            "host_path": str((host / "src").resolve()),
            "guest_path": "C:\\data\\src",
            "read_only": True,
            "share": shown[0]["share"],
            "runtime": True,
        }
    ]
    assert shown[0]["share"] in _share_names(sim, sb)
    # The HCS request used hcsshim's read-only options.
    record = sim.store.read("systems", sb.system_id)
    share = next(s for s in record["Shares"] if s["Name"] == shown[0]["share"])
    assert share["Options"] == {
        "ReadOnly": True,
        "ShareRead": True,
        "CacheIo": True,
        "PseudoOplocks": True,
    }


def test_map_read_write_and_unmap(sb: Sandbox, host: Path, sim: Any) -> None:
    sb.map(str(host / "src"), "C:\\rw", read_only=False)
    assert sb.exec("cmd /c echo yes> C:\\rw\\new.txt").ok
    assert (host / "src" / "new.txt").read_bytes() == b"yes\r\n"
    share = sb.inspect()["mappings"][0]["share"]
    sb.unmap("c:/RW/")
    assert share not in _share_names(sim, sb)
    assert sb.inspect()["mappings"] == []
    assert sb.exec("cmd /c type C:\\rw\\a.txt").exit_code != 0
    assert (host / "src" / "a.txt").exists()  # unmapping never touches the host folder
    with pytest.raises(errors.SpecError, match="nothing is mapped"):
        sb.unmap("C:\\rw")


@pytest.mark.parametrize(
    ("second_host", "second_guest", "needle"),
    [
        ("src", "C:\\other", "overlaps"),  # same host folder
        ("src/sub", "C:\\other", "overlaps"),  # inside it
        ("other", "C:\\data", "overlaps"),  # same guest folder
        ("other", "C:\\data\\x", "overlaps"),  # nested guest folder
    ],
)
def test_overlaps_refused(
    sb: Sandbox, host: Path, second_host: str, second_guest: str, needle: str
) -> None:
    (host / "other").mkdir()
    sb.map(str(host / "src"), "C:\\data")
    with pytest.raises(errors.SpecError, match=needle):
        sb.map(str(host / second_host), second_guest)
    assert len(sb.inspect()["mappings"]) == 1


def test_map_refuses_system_and_state_folders(sb: Sandbox, state_dir: Path) -> None:
    for path in ("/etc", "/", "/usr/share", str(state_dir), str(state_dir.parent)):
        with pytest.raises(errors.SpecError, match="cannot be mapped"):
            sb.map(path, "C:\\x")
    assert sb.inspect()["mappings"] == []


def test_map_fails_cleanly_when_the_guest_path_exists(sb: Sandbox, host: Path, sim: Any) -> None:
    sb.exec("cmd /c mkdir C:\\taken").check()
    before = _share_names(sim, sb)
    with pytest.raises(errors.HcsSandboxError, match="linking C:\\\\taken"):
        sb.map(str(host / "src"), "C:\\taken")
    assert _share_names(sim, sb) == before  # the share was taken back
    assert sb.inspect()["mappings"] == []


def test_map_hcs_failure_leaves_no_record(sb: Sandbox, host: Path, sim: Any) -> None:
    sim.inject("HcsModifyComputeSystem", hresult=0x80004005)
    with pytest.raises(errors.HcsError):
        sb.map(str(host / "src"), "C:\\data")
    assert sb.inspect()["mappings"] == []
    sb.map(str(host / "src"), "C:\\data")
    assert len(sb.inspect()["mappings"]) == 1


def test_map_needs_running(host: Path) -> None:
    sb = Sandbox.create(SandboxSpec(name="idle"))
    try:
        with pytest.raises(errors.SandboxStateError):
            sb.map(str(host / "src"), "C:\\data")
    finally:
        sb.remove(force=True)


# -------------------------------------------------------------------- cp


def test_copy_in_file_and_folder(sb: Sandbox, host: Path) -> None:
    sb.copy_in(str(host / "src" / "a.txt"), "C:\\new\\dir\\a-copy.txt")  # parent created
    assert sb.exec("cmd /c type C:\\new\\dir\\a-copy.txt").stdout == b"alpha\r\n"
    sb.exec("cmd /c mkdir C:\\into").check()
    sb.copy_in(str(host / "src" / "a.txt"), "C:\\into")  # into an existing folder
    assert sb.exec("cmd /c type C:\\into\\a.txt").ok
    sb.copy_in(str(host / "src"), "C:\\into")
    assert sb.exec("cmd /c type C:\\into\\src\\sub\\b.bin").stdout == bytes(range(256)) * 10
    sb.copy_in(str(host / "src"), "C:\\fresh")  # a new folder named as the destination
    assert sb.exec("cmd /c type C:\\fresh\\a.txt").ok
    # The transfer folder is left empty.
    assert os.listdir(Path(sb.directory) / "transfer") == []


def test_copy_out_file_and_folder(sb: Sandbox, host: Path, tmp_path: Path) -> None:
    sb.copy_in(str(host / "src"), "C:\\work")
    out = tmp_path / "out"
    out.mkdir()
    sb.copy_out("C:\\work", str(out))
    assert (out / "work" / "sub" / "b.bin").read_bytes() == bytes(range(256)) * 10
    sb.copy_out("C:\\work\\a.txt", str(out / "renamed.txt"))
    assert (out / "renamed.txt").read_bytes() == b"alpha\r\n"
    with pytest.raises(errors.SpecError, match="does not exist"):
        sb.copy_out("C:\\nothing", str(out))
    with pytest.raises(errors.SpecError, match="does not exist"):
        sb.copy_out("C:\\work\\a.txt", str(tmp_path / "no" / "such" / "dir.txt"))


def test_large_file_streams_with_low_memory(sb: Sandbox, tmp_path: Path) -> None:
    size = 200 * 1024 * 1024
    big = tmp_path / "big.bin"
    with big.open("wb") as fh:  # sparse-ish: a few real blocks, holes between
        for offset in range(0, size, 50 * 1024 * 1024):
            fh.seek(offset)
            fh.write(b"block %d" % offset)
        fh.truncate(size)
    out = tmp_path / "back.bin"
    tracemalloc.start()
    try:
        sb.copy_in(str(big), "C:\\big.bin")
        sb.copy_out("C:\\big.bin", str(out))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 1024 * 1024, f"peak Python allocation {peak} bytes"
    assert out.stat().st_size == size
    with out.open("rb") as fh:
        fh.seek(100 * 1024 * 1024)
        assert fh.read(20).startswith(b"block %d" % (100 * 1024 * 1024))


def test_copy_in_refuses_escaping_links_and_bad_names(
    sb: Sandbox, host: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    (host / "src" / "leak").symlink_to(outside)
    with pytest.raises(errors.SpecError, match="outside the folder being copied"):
        sb.copy_in(str(host / "src"), "C:\\x")
    (host / "src" / "leak").unlink()
    (host / "src" / "inner").symlink_to(host / "src" / "a.txt")  # inside: copied as a file
    sb.copy_in(str(host / "src"), "C:\\ok")
    assert sb.exec("cmd /c type C:\\ok\\inner").stdout == b"alpha\r\n"
    for bad in ("CON", "aux.txt", "a:b", "trailing."):
        weird = tmp_path / "weird"
        weird.mkdir(exist_ok=True)
        (weird / bad).write_text("x")
        with pytest.raises(errors.SpecError):
            sb.copy_in(str(weird), "C:\\w")
        (weird / bad).unlink()
    assert os.listdir(Path(sb.directory) / "transfer") == []


@pytest.mark.parametrize(
    "guest", ["C:\\a\\..\\..\\x", "relative", "C:\\x:ads", "C:\\NUL", "\\\\srv\\share\\x"]
)
def test_cp_refuses_bad_guest_paths(sb: Sandbox, host: Path, tmp_path: Path, guest: str) -> None:
    with pytest.raises(errors.SpecError):
        sb.copy_in(str(host / "src" / "a.txt"), guest)
    with pytest.raises(errors.SpecError):
        sb.copy_out(guest, str(tmp_path))


def test_copy_out_refuses_links_planted_by_the_guest(
    sb: Sandbox, host: Path, tmp_path: Path
) -> None:
    sb.exec("cmd /c mkdir C:\\evil").check()
    sb.exec("cmd /c mklink /d C:\\evil\\escape C:\\Windows").check()
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(errors.SpecError, match="not a plain file or folder"):
        sb.copy_out("C:\\evil", str(out))
    assert os.listdir(out) == []
    assert os.listdir(Path(sb.directory) / "transfer") == []


def test_copy_out_never_writes_through_a_host_link(sb: Sandbox, host: Path, tmp_path: Path) -> None:
    sb.copy_in(str(host / "src" / "a.txt"), "C:\\a.txt")
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    link = tmp_path / "link.txt"
    link.symlink_to(victim)
    with pytest.raises(errors.StorageError, match="symbolic link"):
        sb.copy_out("C:\\a.txt", str(link))
    assert victim.read_text() == "keep"


def test_copy_source_missing(sb: Sandbox, tmp_path: Path) -> None:
    with pytest.raises(errors.SpecError, match="does not exist"):
        sb.copy_in(str(tmp_path / "missing"), "C:\\x")
