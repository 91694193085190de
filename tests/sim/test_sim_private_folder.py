"""The simulator's folder is owner-only (0700), as hcs-sandbox's state directory is, and no
sandbox may map it: it holds every guest's ``C:``, every system's document and the
simulated host's ProgramData, the part ``C:\\ProgramData``'s HCS folders play on Windows
(QA session 17, analyst F9)."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from hcs_sandbox import errors
from hcs_sandbox.native.loader import use_simulator
from hcs_sandbox.sandbox import files
from hcs_sandbox.sandbox.sandbox import Sandbox
from hcs_sandbox.sandbox.spec import MappedFolder, SandboxSpec

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX modes")


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _lifecycle(state: Path) -> None:
    """A sandbox whose guest writes a file: every folder the simulator makes gets made."""
    with Sandbox.run(SandboxSpec(), state_dir=state) as sb:
        assert sb.exec("cmd /c echo secret> C:\\secret.txt", timeout=30).exit_code == 0


def test_a_new_simulator_folder_and_its_subfolders_are_owner_only(tmp_path: Path) -> None:
    previous = os.umask(0o022)  # the usual umask: 0755 folders unless asked for less
    try:
        sim = tmp_path / "deep" / "sim"  # neither it nor its parent exists
        use_simulator(sim)
        _lifecycle(tmp_path / "state")
    finally:
        os.umask(previous)
    assert _mode(sim) == 0o700
    made = [p for p in sim.iterdir() if p.is_dir()]
    assert {p.name for p in made} >= {"systems", "guests", "grants", "locks", "ProgramData"}
    for folder in made:
        assert _mode(folder) == 0o700, folder


def test_an_existing_open_simulator_folder_is_tightened(tmp_path: Path) -> None:
    sim = tmp_path / "sim"
    sim.mkdir()
    os.chmod(sim, 0o755)
    (sim / "mine.txt").write_text("kept")
    use_simulator(sim)
    _lifecycle(tmp_path / "state")
    assert _mode(sim) == 0o700
    assert (sim / "mine.txt").read_text() == "kept"


def _spec(host: Path) -> SandboxSpec:
    return SandboxSpec(mapped_folders=(MappedFolder(str(host), "C:\\m", read_only=False),))


@pytest.mark.parametrize("where", ["itself", "inside", "around"])
def test_create_refuses_to_map_the_simulator_folder(tmp_path: Path, where: str) -> None:
    parent = tmp_path / "outer"
    sim = parent / "sim"
    use_simulator(sim)
    state = tmp_path / "state"
    _lifecycle(state)  # the simulator's folder exists, with its guests/ and ProgramData
    host = {"itself": sim, "inside": sim / "guests", "around": parent}[where]
    with pytest.raises(errors.SpecError) as info:
        Sandbox.create(_spec(host), state_dir=state)
    assert "HCS simulator's folder" in info.value.message, info.value.message
    assert str(sim) in info.value.message
    assert info.value.remedy
    assert Sandbox.list(state_dir=state) == []


def test_runtime_map_refuses_the_simulator_folder(tmp_path: Path) -> None:
    sim = tmp_path / "sim"
    use_simulator(sim)
    state = tmp_path / "state"
    share = tmp_path / "share"
    share.mkdir()
    with Sandbox.run(SandboxSpec(), state_dir=state) as sb:
        for host in (sim, sim / "ProgramData"):
            with pytest.raises(errors.SpecError) as info:
                sb.map(str(host), "C:\\mm", read_only=True)
            assert "HCS simulator's folder" in info.value.message
        sb.map(str(share), "C:\\ok", read_only=True)  # a folder of one's own still maps
    assert str(sim) in files.protected_folders(state)


@pytest.mark.skipif(
    sys.platform == "win32" or os.geteuid() != 0, reason="giving a folder away needs root"
)
def test_another_users_simulator_folder_is_refused_in_one_line(tmp_path: Path) -> None:
    from hcs_sandbox.native.loader import NativeUnavailable, get_backend

    sim = tmp_path / "sim"
    sim.mkdir(mode=0o700)
    os.chown(sim, 65534, -1)  # nobody's
    use_simulator(sim)
    with pytest.raises(NativeUnavailable) as info:
        get_backend()
    assert "belongs to another user" in info.value.message
    assert "\n" not in info.value.message
    assert info.value.remedy
