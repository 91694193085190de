"""Argument parsing of the lifecycle verbs: pure, no HCS needed."""

from __future__ import annotations

import argparse

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hcs_sandbox.cli import common
from hcs_sandbox.cli.ls import ago, parse_filters
from hcs_sandbox.cli.main import build_parser
from hcs_sandbox.cli.prune import describe
from hcs_sandbox.cli.wait import status_text
from hcs_sandbox.errors import SpecError


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


# ---------------------------------------------------------------------------- --map


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (r"C:\src:C:\work", (r"C:\src", r"C:\work", True)),
        (r"C:\src:C:\work:rw", (r"C:\src", r"C:\work", False)),
        (r"C:\src:C:\work:RO", (r"C:\src", r"C:\work", True)),
        ("/srv/data:C:\\data", ("/srv/data", "C:\\data", True)),
        ("/srv/data:C:/data:rw", ("/srv/data", "C:/data", False)),
        (r"D:\:C:\d", ("D:\\", r"C:\d", True)),
        ("rel/dir:C:\\x", ("rel/dir", "C:\\x", True)),
    ],
)
def test_parse_map(text: str, expected: tuple[str, str, bool]) -> None:
    assert common.parse_map(text) == expected


@pytest.mark.parametrize("text", ["", "nocolon", ":C:\\x", "/a:", "/a:/b:/c", r"C:\a"])
def test_parse_map_rejects(text: str) -> None:
    with pytest.raises(SpecError) as info:
        common.parse_map(text)
    assert "--map" in str(info.value)
    assert "HOST:GUEST" in str(info.value)


_segment = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-.", min_size=1, max_size=8)


@given(
    drive_host=st.sampled_from("CDEZ"),
    host_parts=st.lists(_segment, min_size=1, max_size=3),
    drive_guest=st.sampled_from("CDE"),
    guest_parts=st.lists(_segment, min_size=1, max_size=3),
    mode=st.sampled_from(["", ":rw", ":ro"]),
    posix_host=st.booleans(),
)
def test_parse_map_round_trips(  # noqa: PLR0917 - one argument per hypothesis strategy
    drive_host: str,
    host_parts: list[str],
    drive_guest: str,
    guest_parts: list[str],
    mode: str,
    posix_host: bool,
) -> None:
    host = "/" + "/".join(host_parts) if posix_host else f"{drive_host}:\\" + "\\".join(host_parts)
    guest = f"{drive_guest}:\\" + "\\".join(guest_parts)
    assert common.parse_map(f"{host}:{guest}{mode}") == (host, guest, mode != ":rw")


@given(st.text(max_size=40))
def test_parse_map_never_crashes(text: str) -> None:
    try:
        host, guest, _ro = common.parse_map(text)
    except SpecError:
        return
    assert host
    assert guest


# ---------------------------------------------------------------------------- --publish etc.


def test_parse_publish() -> None:
    assert common.parse_publish("8080:80") == (8080, 80, "tcp")
    assert common.parse_publish("53:53/UDP") == (53, 53, "udp")


@pytest.mark.parametrize("text", ["80", "0:80", "70000:80", "a:b", "80:80/sctp", "80:"])
def test_parse_publish_rejects(text: str) -> None:
    with pytest.raises(SpecError, match="--publish"):
        common.parse_publish(text)


@given(st.integers(1, 65535), st.integers(1, 65535), st.sampled_from(["", "/tcp", "/udp"]))
def test_parse_publish_round_trips(host: int, guest: int, proto: str) -> None:
    assert common.parse_publish(f"{host}:{guest}{proto}") == (host, guest, proto[1:] or "tcp")


def test_parse_key_value() -> None:
    assert common.parse_key_value("a=b=c", option="--env") == ("a", "b=c")
    assert common.parse_key_value("a=", option="--env") == ("a", "")
    with pytest.raises(SpecError, match="--label"):
        common.parse_key_value("=x", option="--label")
    with pytest.raises(SpecError, match="KEY=VALUE"):
        common.parse_key_value("novalue", option="--env")


def test_parse_base_and_memory() -> None:
    assert common.parse_base("host") == ("host", None)
    assert common.parse_base("vhdx:C:\\vm\\a.vhdx") == ("vhdx", "C:\\vm\\a.vhdx")
    assert common.parse_base("IMAGE:/img") == ("image", "/img")
    for bad in ("image", "vhdx:", "cloud:x", "host:x"):
        with pytest.raises(SpecError, match="--base"):
            common.parse_base(bad)
    assert common.parse_memory("2048") == 2048
    assert common.parse_memory("4G") == 4096
    assert common.parse_memory("3000M") == 3000
    assert common.parse_memory("2gb") == 2048
    with pytest.raises(SpecError, match="--memory"):
        common.parse_memory("lots")


# ---------------------------------------------------------------------------- spec_from_args


def test_spec_from_flags() -> None:
    args = parse(
        "create",
        "--name",
        "web",
        "--memory",
        "2G",
        "--cpus",
        "4",
        "--network",
        "nat",
        "-p",
        "8080:80",
        "--map",
        "/srv/src:C:\\src:rw",
        "--env",
        "A=1",
        "--label",
        "team=qa",
        "--persistent",
        "--display",
        "desktop",
    )
    spec = common.spec_from_args(args)
    assert spec.name == "web"
    assert spec.memory_mb == 2048
    assert spec.cpus == 4
    assert spec.network == "nat"
    assert [(p.host_port, p.guest_port, p.protocol) for p in spec.ports] == [(8080, 80, "tcp")]
    assert [(m.host_path, m.guest_path, m.read_only) for m in spec.mapped_folders] == [
        ("/srv/src", "C:\\src", False)
    ]
    assert dict(spec.environment) == {"A": "1"}
    assert dict(spec.labels) == {"team": "qa"}
    assert spec.persistence == "persistent"
    assert spec.display == "desktop"


def test_spec_defaults_without_flags() -> None:
    spec = common.spec_from_args(parse("create"))
    assert spec.network == "none"
    assert spec.persistence == "ephemeral"
    assert spec.mapped_folders == ()


def test_spec_from_wsb_with_flags_over_it(tmp_path: object) -> None:
    from pathlib import Path

    folder = Path(str(tmp_path))
    (folder / "share").mkdir()
    wsb = folder / "a.wsb"
    wsb.write_text(
        "<Configuration><Networking>Disable</Networking><MemoryInMB>2048</MemoryInMB>"
        "<MappedFolders><MappedFolder><HostFolder>share</HostFolder>"
        "<SandboxFolder>C:\\share</SandboxFolder></MappedFolder></MappedFolders>"
        "</Configuration>",
        encoding="utf-8",
    )
    spec = common.spec_from_args(parse("create", str(wsb), "--memory", "3072", "--map", "/x:C:\\x"))
    assert spec.memory_mb == 3072
    assert spec.network == "none"
    assert [m.guest_path for m in spec.mapped_folders] == ["C:\\share", "C:\\x"]


def test_bad_flag_values_are_spec_errors() -> None:
    with pytest.raises(SpecError, match="cpus"):
        common.spec_from_args(parse("create", "--cpus", "many"))
    with pytest.raises(SpecError):
        common.spec_from_args(parse("create", "--cpus", "500"))
    with pytest.raises(SpecError, match="name"):
        common.spec_from_args(parse("create", "--name", "bad name!"))


# ---------------------------------------------------------------------------- run's "--"


def test_run_splits_the_command_at_double_dash() -> None:
    args = parse("run", "--rm", "--", "cmd", "/c", "ver", "--rm", "-d")
    assert args.rm is True
    assert args.detach is False
    assert args.command == ["cmd", "/c", "ver", "--rm", "-d"]
    assert args.wsb is None


def test_run_with_wsb_and_command() -> None:
    args = parse("run", "x.wsb", "-d", "--simulator")
    assert (args.wsb, args.detach, args.command, args.simulator) == ("x.wsb", True, [], True)
    args = parse("run", "x.wsb", "--", "cmd", "--", "y")
    assert args.wsb == "x.wsb"
    assert args.command == ["cmd", "--", "y"]


def test_global_options_after_the_verb() -> None:
    args = parse("ls", "-a", "--simulator", "--state-dir", "/tmp/x", "--debug")
    assert args.simulator
    assert args.debug
    assert args.all
    assert args.state_dir == "/tmp/x"


def test_ps_is_an_alias_of_ls() -> None:
    assert parse("ps", "-q").quiet is True


@pytest.mark.parametrize(
    "argv",
    [
        ["stop", "-t", "-1", "a"],
        ["stop", "-t", "soon", "a"],
        ["wait", "--timeout", "0", "a"],
        ["rm"],
        ["create", "--network", "wifi"],
        ["run", "--display", "4k"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        parse(*argv)
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "error:" in err


# ---------------------------------------------------------------------------- small helpers


def test_filters() -> None:
    assert parse_filters(["label=a=b", "label=c", "name=web", "STATE=running"]) == [
        ("label", "a", "b"),
        ("label", "c", None),
        ("name", "web", None),
        ("state", "running", None),
    ]
    for bad in ("label", "color=red", "name="):
        with pytest.raises(SpecError, match="--filter"):
            parse_filters([bad])


def test_ago() -> None:
    assert ago(0.2) == "just now"
    assert ago(1) == "1 second ago"
    assert ago(59) == "59 seconds ago"
    assert ago(61) == "1 minute ago"
    assert ago(7300) == "2 hours ago"
    assert ago(86400 * 3) == "3 days ago"


def test_status_text() -> None:
    assert status_text(0, "GracefulExit") == "0"
    assert status_text(0x80370106 - 2**32, "UnexpectedExit") == "0x80370106 UnexpectedExit"


def test_prune_describe() -> None:
    from hcs_sandbox.sandbox.maintenance import PruneReport

    report = PruneReport(
        dry_run=False,
        systems=["abc"],
        records=["web (123)"],
        marked_stopped=["p (9)"],
        endpoints=[],
        files=["/s/x"],
        failures=["boom"],
    )
    assert describe(report, dry_run=False) == [
        "removed file: /s/x",
        "marked stopped: p (9)",
        "removed record: web (123)",
        "removed compute system: abc",
    ]
    assert describe(report, dry_run=True)[0] == "would remove file: /s/x"
