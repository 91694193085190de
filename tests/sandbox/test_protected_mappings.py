"""Mapped folders given at create time go through the same host-folder rule as runtime
``Sandbox.map`` (``files.host_folder_problem``): no system folder, no ``/``, not the state
directory of the store being used nor a folder inside or around it; read-only or not.  A
refused create leaves nothing behind (no record, no file, not even a new state directory).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hcs_sandbox import errors
from hcs_sandbox.sandbox import files
from hcs_sandbox.sandbox.sandbox import Sandbox
from hcs_sandbox.sandbox.spec import MappedFolder, SandboxSpec
from hcs_sandbox.sandbox.wsb import parse_wsb, read_wsb

WSB = """<Configuration>
  <MappedFolders>
    <MappedFolder>
      <HostFolder>{host}</HostFolder>
      <SandboxFolder>C:\\mapped</SandboxFolder>
      <ReadOnly>false</ReadOnly>
    </MappedFolder>
  </MappedFolders>
</Configuration>
"""


def _spec(host: str | Path, *, read_only: bool = False) -> SandboxSpec:
    return SandboxSpec(mapped_folders=(MappedFolder(str(host), "C:\\mapped", read_only),))


def _refused(spec: SandboxSpec, state: Path, needle: str, **kwargs: object) -> None:
    """Sandbox.create refuses ``spec`` with one SpecError naming the folder, and nothing
    is made."""
    existed = state.exists()
    with pytest.raises(errors.SpecError) as info:
        Sandbox.create(spec, **kwargs)  # type: ignore[arg-type]
    exc = info.value
    assert "cannot be mapped" in exc.message, exc.message
    assert needle in exc.message, exc.message
    assert exc.field == "mapped_folders[0].host_path"
    assert exc.remedy
    assert state.exists() == existed  # not even the state directory was made
    if existed:
        assert Sandbox.list(all=True, state_dir=state) == []
        sandboxes = state / "sandboxes"
        assert not sandboxes.exists() or not any(sandboxes.iterdir())


@pytest.mark.parametrize("read_only", [False, True])
@pytest.mark.parametrize("host", ["/", "/etc", "/usr/share"])
def test_create_refuses_system_folders(state_dir: Path, host: str, read_only: bool) -> None:
    _refused(_spec(host, read_only=read_only), state_dir, host)


@pytest.mark.parametrize("read_only", [False, True])
def test_create_refuses_the_state_dir(state_dir: Path, read_only: bool) -> None:
    state_dir.mkdir()
    _refused(_spec(state_dir, read_only=read_only), state_dir, "state directory")


def test_create_refuses_a_folder_inside_the_state_dir(state_dir: Path) -> None:
    inner = state_dir / "sandboxes"
    inner.mkdir(parents=True)
    _refused(_spec(inner), state_dir, "state directory")


def test_create_refuses_a_parent_of_the_state_dir(state_dir: Path) -> None:
    state_dir.mkdir()
    _refused(_spec(state_dir.parent), state_dir, "contains the hcs-sandbox state directory")


def test_create_refuses_a_parent_before_the_state_dir_exists(state_dir: Path) -> None:
    """The first create of a store: the state directory it would make counts already."""
    assert not state_dir.exists()
    _refused(_spec(state_dir.parent), state_dir, "state directory")


def test_create_refuses_the_state_dir_reached_through_a_link(
    state_dir: Path, tmp_path: Path
) -> None:
    state_dir.mkdir()
    link = tmp_path / "elsewhere"
    link.symlink_to(state_dir, target_is_directory=True)
    _refused(_spec(link), state_dir, "state directory")


def test_the_state_dir_of_the_store_being_used_counts(state_dir: Path, tmp_path: Path) -> None:
    """``Sandbox.create(state_dir=...)`` protects that store, not only the default one."""
    other = tmp_path / "other-store"
    other.mkdir()
    _refused(_spec(other), other, "state directory", state_dir=other)
    assert not state_dir.exists()


def test_a_folder_beside_the_state_dir_is_accepted(state_dir: Path, tmp_path: Path) -> None:
    share = tmp_path / "share"
    share.mkdir()
    sb = Sandbox.create(_spec(share))
    try:
        assert sb.state == "created"
    finally:
        sb.remove(force=True)


def test_wsb_with_a_protected_folder_names_file_and_line(state_dir: Path, tmp_path: Path) -> None:
    for host, needle in (("/etc", "/etc"), (str(tmp_path), "state directory")):
        path = tmp_path / "x.wsb"
        path.write_text(WSB.format(host=host), encoding="utf-8")
        with pytest.raises(errors.WsbError) as info:
            read_wsb(path, check_paths=True)
        assert info.value.line == 4
        assert "cannot be mapped" in info.value.message
        assert needle in info.value.message
        # Read without the check (a library user's spec): create still refuses it.
        spec = read_wsb(path).spec
        _refused(spec, state_dir, needle)


def test_runtime_and_create_time_use_the_same_rule(state_dir: Path, tmp_path: Path) -> None:
    """Each path gets the same verdict at create and from files.check_host_folder, the
    check runtime map uses (read-only or not)."""
    state_dir.mkdir()
    share = tmp_path / "share"
    share.mkdir()
    protected = files.protected_folders(state_dir)
    for host in ("/", "/etc", "/proc/self", str(state_dir), str(tmp_path), str(share)):
        try:
            files.check_host_folder(host, protected=protected)
            runtime_ok = True
        except errors.SpecError:
            runtime_ok = False
        try:
            _spec(host, read_only=True).check_host_paths(state_dir=state_dir)
            create_ok = True
        except errors.SpecError:
            create_ok = False
        assert runtime_ok == create_ok == (host == str(share)), host


def test_plan_mode_checks_the_path_as_written(state_dir: Path) -> None:
    """``local=False`` (plan): no file-system access, so a folder of another machine
    passes and a system folder is refused the same way."""
    assert files.host_folder_problem("C:\\Users\\me\\tools", local=False) is None
    assert files.host_folder_problem("/nowhere/at/all", local=False) is None
    for path in ("C:\\", "C:\\Windows\\System32", "c:\\programdata\\hcs-sandbox", "/etc"):
        assert files.host_folder_problem(path, local=False) is not None, path
    state = os.fspath(state_dir)
    assert files.host_folder_problem(
        state, protected=files.protected_folders(state_dir), local=False
    )
    with pytest.raises(errors.SpecError, match="mapped_folders\\[0\\]"):
        _spec("C:\\Windows").check_mapped_folders(local=False)


def test_parse_wsb_without_check_paths_still_reads_any_folder() -> None:
    """The parser alone is not the gate (a .wsb may be read to convert it): create is."""
    result = parse_wsb(WSB.format(host="C:\\").encode())
    assert result.spec.mapped_folders[0].host_path == "C:\\"
