"""``hcs-sandbox cp``: NAME:PATH parsing and copies both ways."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from cli_support import Result
from hypothesis import given
from hypothesis import strategies as st

from hcs_sandbox import errors
from hcs_sandbox.cli.cp import parse_cp_args, parse_location

Cli = Callable[..., Result]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("web:C:\\data", ("web", "C:\\data")),
        ("web:", ("web", "")),
        ("3f2a9c1e-5b7d:C:\\x", ("3f2a9c1e-5b7d", "C:\\x")),
        ("C:\\src\\file.txt", (None, "C:\\src\\file.txt")),
        ("c:/src", (None, "c:/src")),
        ("C:", (None, "C:")),
        ("x:C:\\a", ("x", "C:\\a")),
        ("./a:b", (None, "./a:b")),
        ("/abs/path", (None, "/abs/path")),
        ("plain", (None, "plain")),
    ],
)
def test_parse_location(text: str, expected: tuple[str | None, str]) -> None:
    assert parse_location(text) == expected


@given(st.text(max_size=30))
def test_parse_location_never_crashes_and_round_trips(text: str) -> None:
    name, path = parse_location(text)
    if name is None:
        assert path == text
    else:
        assert f"{name}:{path}" == text
        assert ":" not in name


def test_parse_cp_args() -> None:
    assert parse_cp_args("./f", "web:C:\\d") == ("in", "web", "C:\\d", "./f")
    assert parse_cp_args("web:C:\\d", "out") == ("out", "web", "C:\\d", "out")
    for src, dst in [("a", "b"), ("web:C:\\a", "web:C:\\b"), ("web:", "x"), ("x", "web:")]:
        with pytest.raises(errors.SpecError):
            parse_cp_args(src, dst)


def test_cp_both_ways(cli: Cli, tmp_path: Path) -> None:
    assert cli("run", "-d", "--name", "box").code == 0
    src = tmp_path / "tree"
    (src / "deep").mkdir(parents=True)
    (src / "deep" / "f.txt").write_bytes(b"data\r\n")
    result = cli("cp", str(src), "box:C:\\in")
    assert result.code == 0, result.err
    out = tmp_path / "back"
    out.mkdir()
    result = cli("cp", "box:C:\\in", str(out))
    assert result.code == 0, result.err
    assert (out / "in" / "deep" / "f.txt").read_bytes() == b"data\r\n"
    result = cli("cp", "--json", "box:C:\\in\\deep\\f.txt", str(out / "g.txt"))
    assert result.json()["direction"] == "out"
    assert (out / "g.txt").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["cp", "a", "b"],
        ["cp", "box:C:\\a", "box:C:\\b"],
        ["cp", "/nonexistent/file", "box:C:\\x"],
        ["cp", "/etc/hostname", "box:C:\\a\\..\\..\\x"],
        ["cp", "/etc/hostname", "box:C:\\CON"],
        ["cp", "/etc/hostname", "nosuch:C:\\x"],
    ],
)
def test_cp_bad_input_is_one_line_exit_2(cli: Cli, argv: list[str]) -> None:
    assert cli("run", "-d", "--name", "box").code == 0
    result = cli(*argv)
    assert result.code == 2, result.err
    assert len(result.err_lines) == 1
    assert "Traceback" not in result.err
