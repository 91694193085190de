"""Session 17: ``Sandbox.warnings`` (the planner's warnings, kept with the sandbox) and
``warnings_unless``; each planner warning names the spec field it is about."""

from __future__ import annotations

from pathlib import Path

from hcs_sandbox import Sandbox, SandboxSpec
from hcs_sandbox.sandbox.planner import HostFacts, plan
from hcs_sandbox.sandbox.spec import MappedFolder, PortMapping
from hcs_sandbox.sandbox.wsb import parse_wsb


def test_a_sandbox_keeps_the_planners_warnings_with_their_fields(tmp_path: Path) -> None:
    host = tmp_path / "rw"
    host.mkdir()
    spec = SandboxSpec(
        name="loose",
        network="nat",
        ports=(PortMapping(8082, 80),),
        gpu=True,
        mapped_folders=(MappedFolder(str(host), "C:\\rw", read_only=False),),
        logon_command="cmd /c echo hi",
    )
    sb = Sandbox.create(spec)
    try:
        assert sb.warnings == tuple(sb.inspect()["warnings"])
        assert any(w.startswith("networking is on (nat)") for w in sb.warnings)
        assert any("a logon command is set" in w for w in sb.warnings)
        rest = sb.warnings_unless({"network", "gpu", "mapped_folders[0]", "logon_command"})
        assert not any(w.startswith("networking is on") for w in rest)
        assert not any(w.startswith("the virtual GPU is on") for w in rest)
        assert not any("is writable from the sandbox" in w for w in rest)
        assert not any("a logon command is set" in w for w in rest)
        assert any(w.startswith("port 8082/tcp") for w in rest)  # ports: not asked
        assert any(w.startswith("experimental:") for w in rest)  # about no field
        again = Sandbox.get("loose")  # another object reads it from the record
        assert again.warnings == sb.warnings
        again.close()
    finally:
        sb.remove(force=True)


def test_a_closed_sandbox_has_no_warnings() -> None:
    sb = Sandbox.create(SandboxSpec(name="closed"))
    try:
        assert sb.warnings == ()
        assert sb.warnings_unless(()) == ()
    finally:
        sb.remove(force=True)


def test_each_planner_warning_names_its_field() -> None:
    spec = SandboxSpec(
        network="nat",
        ports=(PortMapping(8080, 80),),
        clipboard=True,
        printer=True,
        display="desktop",
        mapped_folders=(
            MappedFolder("C:\\ro", "C:\\ro"),
            MappedFolder("C:\\rw", "C:\\rw", read_only=False),
        ),
        logon_command="x",
    )
    planned = plan(spec, HostFacts.for_planning(spec))
    about = dict(zip(planned.warnings, planned.warning_fields, strict=True))
    assert len(planned.warning_fields) == len(planned.warnings)
    by_field = {f: w for w, f in about.items() if f is not None}
    assert set(by_field) == {
        "network",
        "ports",
        "clipboard",
        "printer",
        "display",
        "mapped_folders[1]",
        "logon_command",
    }
    assert by_field["mapped_folders[1]"].startswith("host folder C:\\rw is writable")


def test_the_wsb_readers_folder_warnings_name_their_folder() -> None:
    result = parse_wsb(
        "<Configuration><MappedFolders>"
        "<MappedFolder><HostFolder>C:\\a</HostFolder><SandboxFolder>C:\\a</SandboxFolder>"
        "<ReadOnly>true</ReadOnly></MappedFolder>"
        "<MappedFolder><HostFolder>C:\\b</HostFolder><SandboxFolder>C:\\b</SandboxFolder>"
        "</MappedFolder></MappedFolders></Configuration>"
    )
    writable = [
        f for w, f in zip(result.warnings, result.warning_fields, strict=True) if "C:\\b" in w
    ]
    assert writable == ["mapped_folders[1]"]


def test_the_path_style_warnings_do_not_say_this_host() -> None:
    spec = SandboxSpec(mapped_folders=(MappedFolder("/srv/data", "C:\\data"),))
    planned = plan(spec, HostFacts.for_planning(spec))
    [line] = [w for w in planned.warnings if "/srv/data" in w]
    assert "on this host" not in line
    assert "Windows" in line
    windows = SandboxSpec(mapped_folders=(MappedFolder("C:\\data", "C:\\data"),))
    posix = HostFacts.for_planning(windows, path_style="posix")
    [line] = [w for w in plan(windows, posix).warnings if "C:\\data" in w]
    assert "on this host" not in line
    assert "POSIX" in line
