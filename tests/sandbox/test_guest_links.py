"""Create-time mapped folders appear at their guest paths after every start (simulator).

The planner puts one VSMB share per spec mapped folder in the document and a ``GuestLink``
in ``Plan.guest_links``; ``Sandbox.start`` links each one in the guest
(``files.link_created_mappings``) before the logon command runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from hcs_sandbox import errors
from hcs_sandbox.sandbox import files
from hcs_sandbox.sandbox.sandbox import Sandbox
from hcs_sandbox.sandbox.spec import MappedFolder, SandboxSpec

if TYPE_CHECKING:
    from conftest import Inspector

E_FAIL = 0x80004005
HCS_E_CONNECT_FAILED = 0x80370108


@pytest.fixture
def host(tmp_path: Path) -> Path:
    root = tmp_path / "host"
    (root / "ro").mkdir(parents=True)
    (root / "rw").mkdir()
    (root / "ro" / "in.txt").write_bytes(b"from the host\r\n")
    return root


def _spec(host: Path, name: str, **kw: Any) -> SandboxSpec:
    return SandboxSpec(
        name=name,
        mapped_folders=[
            MappedFolder(str(host / "ro"), "C:\\data\\ro", True),
            MappedFolder(str(host / "rw"), "C:\\out", False),
        ],
        **kw,
    )


def _running_systems() -> list[str]:
    from hcs_sandbox.hcs.system import enumerate_compute_systems

    return [
        str(s.get("Id"))
        for s in enumerate_compute_systems({"Owners": ["hcs-sandbox"]})
        if str(s.get("State", "")).lower() in ("running", "paused", "created")
    ]


def _wait_logon(sb: Sandbox) -> None:
    thread = getattr(sb, "_logon_thread", None)
    assert thread is not None
    thread.join(20)
    assert not thread.is_alive()


def test_read_only_and_read_write_folders_are_linked(host: Path) -> None:
    with Sandbox.run(_spec(host, "links")) as sb:
        read = sb.exec("cmd /c type C:\\data\\ro\\in.txt")
        assert read.ok, read.stderr_text
        assert read.stdout == b"from the host\r\n"
        denied = sb.exec("cmd /c echo nope> C:\\data\\ro\\new.txt")
        assert denied.exit_code != 0
        assert "Access is denied" in denied.stderr_text
        assert not (host / "ro" / "new.txt").exists()
        wrote = sb.exec("cmd /c echo written> C:\\out\\result.txt")
        assert wrote.ok, wrote.stderr_text
        assert (host / "rw" / "result.txt").read_bytes() == b"written\r\n"
        shown = sb.inspect()["mappings"]
        assert shown == [
            {
                "host_path": str(host / "ro"),
                "guest_path": "C:\\data\\ro",
                "read_only": True,
                "share": "map0",
                "runtime": False,
            },
            {
                "host_path": str(host / "rw"),
                "guest_path": "C:\\out",
                "read_only": False,
                "share": "map1",
                "runtime": False,
            },
        ]
        assert "linked 2 mapped folder(s)" in sb.logs()


def test_create_time_and_runtime_mappings_listed_together(host: Path, tmp_path: Path) -> None:
    extra = tmp_path / "extra"
    extra.mkdir()
    with Sandbox.run(_spec(host, "both")) as sb:
        sb.map(str(extra), "C:\\extra")
        shown = [(m.guest_path, m.runtime) for m in files.mappings(sb)]
        assert shown == [("C:\\data\\ro", False), ("C:\\out", False), ("C:\\extra", True)]
        # A runtime mapping may not overlap a create-time one, on either side.
        with pytest.raises(errors.SpecError, match="overlaps"):
            sb.map(str(tmp_path / "extra"), "C:\\data\\ro\\sub")
        with pytest.raises(errors.SpecError, match="created and stays mapped"):
            sb.unmap("C:\\out")


def test_logon_command_sees_the_mapped_folder(host: Path) -> None:
    spec = _spec(host, "logon", logon_command="cmd /c type C:\\data\\ro\\in.txt")
    with Sandbox.run(spec) as sb:
        _wait_logon(sb)
        text = sb.logs()
        assert "logon command exited with code 0" in text
        assert "from the host" in text.split("---- logon command output ----\n")[1]


def test_links_wait_for_the_guest_connection(
    host: Path, sim: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files, "_LINK_RETRY_EVERY", 0.01)
    sim.inject("HcsCreateProcess", hresult=HCS_E_CONNECT_FAILED, times=3)
    with Sandbox.run(_spec(host, "slow")) as sb:
        assert sb.exec("cmd /c type C:\\data\\ro\\in.txt").ok


def test_link_failure_is_a_start_failure_that_leaves_nothing(
    host: Path, sim: Any, world: Inspector
) -> None:
    sb = Sandbox.create(_spec(host, "fails"))
    sim.inject("HcsCreateProcess", hresult=E_FAIL)  # the first guest command after start
    with pytest.raises(errors.HcsError) as caught:
        sb.start()
    message = str(caught.value)
    assert "could not be linked at C:\\data\\ro" in message
    assert str(host / "ro") in message
    assert "the sandbox was stopped" in message
    assert _running_systems() == []  # the VM was terminated
    assert sb.state == "stopped"
    assert world.records() == ["fails:stopped"]
    sb.remove()
    world.assert_nothing_left()


def test_link_failure_inside_run_removes_everything(host: Path, sim: Any, world: Inspector) -> None:
    sim.inject("HcsCreateProcess", hresult=E_FAIL, nth=2)  # the second guest command
    with (
        pytest.raises(errors.HcsError, match="could not be linked"),
        Sandbox.run(_spec(host, "gone")),
    ):
        raise AssertionError("the block must not run")  # pragma: no cover
    world.assert_nothing_left()


def test_guest_command_failure_names_the_folder(host: Path, world: Inspector) -> None:
    # C:\Windows\System32 exists in every guest: mklink cannot put a link there.
    spec = SandboxSpec(
        name="taken", mapped_folders=[MappedFolder(str(host / "ro"), "C:\\Windows\\System32")]
    )
    sb = Sandbox.create(spec)
    with pytest.raises(errors.HcsSandboxError) as caught:
        sb.start()
    assert "could not be linked at C:\\Windows\\System32" in str(caught.value)
    assert "linking C:\\Windows\\System32 to the mapped folder failed" in str(caught.value)
    assert _running_systems() == []
    assert sb.state == "stopped"
    sb.remove()
    world.assert_nothing_left()


def test_persistent_links_are_made_again_after_restart(host: Path, world: Inspector) -> None:
    sb = Sandbox.create(_spec(host, "keep", persistence="persistent"))
    try:
        sb.start()
        assert sb.exec("cmd /c type C:\\data\\ro\\in.txt").stdout == b"from the host\r\n"
        sb.stop(timeout=5)
        assert sb.state == "stopped"
        sb.start()
        assert sb.state == "running"
        assert sb.exec("cmd /c type C:\\data\\ro\\in.txt").stdout == b"from the host\r\n"
        assert sb.exec("cmd /c echo again> C:\\out\\b.txt").ok
        assert (host / "rw" / "b.txt").read_bytes() == b"again\r\n"
        assert [m.share for m in files.mappings(sb)] == ["map0", "map1"]
        # A persistent disk keeps the links of the previous start: linking again
        # replaces them instead of failing.
        system = sb._open_system()
        assert system is not None
        assert files.link_created_mappings(sb, system) == 2
        assert sb.exec("cmd /c type C:\\data\\ro\\in.txt").ok
    finally:
        sb.remove(force=True)
    world.assert_nothing_left()


def test_no_mapped_folders_no_guest_command(sim: Any) -> None:
    # Nothing to link: start runs no guest process at all.
    sim.inject("HcsCreateProcess", hresult=E_FAIL, times=100)
    with Sandbox.run(SandboxSpec(name="plain")) as sb:
        assert sb.state == "running"
        assert sb.inspect()["mappings"] == []
