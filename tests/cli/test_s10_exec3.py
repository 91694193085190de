"""Round s10, task "exec3": review RV28's findings on ``exec -w`` and the simulator's guest paths.

1. a working directory longer than MAX_PATH is said to be so whatever its shape (UNC,
   ``\\\\?\\``, ``\\\\.\\``), and that the device prefix does not lift the limit;
2. the simulated guest keeps a ``\\\\?\\X:`` or ``\\\\.\\X:`` prefix of its current directory
   (and, after ``\\\\?\\``, ``.`` and ``..`` as given);
3. the simulated guest reads ``C:\\\\Windows`` as ``C:\\Windows``, not as a network path;
4. the reserved characters are refused in the components of a UNC or device working
   directory too (not the device names or trailing characters ``\\\\?\\`` bypasses);
5. ``replaced=b'...'`` (bytes, bytearray, memoryview) is a TypeError naming the decoded name.

Each test fails on the code before the change (53b2b61).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from cli_support import Result

from hcs_sandbox import errors
from hcs_sandbox.sandbox.guest import _workdir_failure, process_parameters
from hcs_sandbox.sandbox.wsb import parse_wsb, read_wsb

Cli = Callable[..., Result]
ROOT = Path(__file__).resolve().parents[2]


# ----------------------------------------------------------- 1: MAX_PATH for every shape

_DEEP = "\\".join(["d" * 50] * 6)  # 305 characters


@pytest.mark.parametrize(
    ("value", "lifted"),
    [
        ("\\\\?\\C:\\" + _DEEP, "\\\\?\\"),
        ("\\\\.\\C:\\" + _DEEP, "\\\\.\\"),
        ("//?/C:/" + _DEEP, "\\\\?\\"),
        ("\\\\srv\\share\\" + _DEEP, None),
        ("\\\\?\\UNC\\srv\\share\\" + _DEEP, "\\\\?\\"),
    ],
)
def test_a_long_path_of_any_shape_is_said_to_be_longer_than_max_path(
    value: str, lifted: str | None
) -> None:
    what, remedy = _workdir_failure(value, "web")
    assert what.startswith(f"the working directory '{value}' is longer than MAX_PATH (260 ")
    assert remedy.startswith("give a shorter path")
    note = f"(the {lifted} prefix does not lift this limit for a working directory)"
    assert (note in what) is (lifted is not None), what


def test_a_long_device_path_through_the_cli(cli: Cli, web: str) -> None:
    value = "\\\\?\\C:\\" + _DEEP
    result = cli("exec", "-w", value, web, "--", "cmd", "/c", "cd")
    assert result.code == 1, result.err
    (line,) = result.err_lines
    assert "is longer than MAX_PATH (260 characters)" in line
    assert "the \\\\?\\ prefix does not lift this limit" in line
    assert "give an existing folder" not in line
    # Within the limit a device path still gets the guest's answer.
    short = "\\\\?\\C:\\" + "e" * 251  # 258 characters
    what, _ = _workdir_failure(short, "web")
    assert what.endswith("does not exist there, or is not a folder")


def test_a_component_too_long_for_the_simulators_host_is_error_directory(
    cli: Cli, web: str
) -> None:
    # One 300-character name: the host's own limit (ENAMETOOLONG) must not turn into E_FAIL.
    for value in ("C:\\" + "d" * 300, "\\\\?\\C:\\" + "d" * 300):
        result = cli("exec", "-w", value, web, "--", "cmd", "/c", "cd")
        assert result.code == 1, result.err
        (line,) = result.err_lines
        assert "0x8007010B" in line, line
        assert "is longer than MAX_PATH (260 characters)" in line


def test_exec_docs_put_the_length_first_for_every_shape() -> None:
    text = (ROOT / "docs" / "exec.md").read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if "MAX_PATH (260)" in line]
    assert len(rows) == 1, rows
    assert "whatever its shape" in rows[0]
    assert "does not lift this limit for a working directory" in rows[0]


# ------------------------------------------------ 2: the simulator keeps a device prefix


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("\\\\?\\C:\\Windows", "\\\\?\\C:\\Windows"),
        ("//?/C:/Windows", "\\\\?\\C:\\Windows"),
        ("\\\\?\\C:\\Windows\\", "\\\\?\\C:\\Windows"),
        ("//./C:/Windows/.", "\\\\.\\C:\\Windows"),
        ("\\\\.\\C:\\Windows", "\\\\.\\C:\\Windows"),
        ("\\\\.\\C:\\Users\\..\\Windows", "\\\\.\\C:\\Windows"),
    ],
)
def test_the_simulated_guest_keeps_a_device_prefix(
    cli: Cli, web: str, value: str, shown: str
) -> None:
    result = cli("exec", "-w", value, web, "--", "cmd", "/c", "cd")
    assert (result.code, result.out) == (0, shown + "\r\n"), result.err
    result = cli("exec", "-w", value, web, "--", "cmd", "/c", "dir")  # relative to it
    assert result.code == 0, result.err
    assert "System32" in result.out


def test_the_simulated_guest_keeps_the_rest_after_the_literal_prefix() -> None:
    from hcs_sandbox.sim.guest import _normalize_guest

    assert _normalize_guest("\\\\?\\C:\\x\\..\\Windows") == "\\\\?\\C:\\x\\..\\Windows"
    assert _normalize_guest("\\\\?\\C:\\x/.\\y") == "\\\\?\\C:\\x/.\\y"
    assert _normalize_guest("//?/C:/x/../y") == "\\\\?\\C:\\y"  # not the literal prefix
    assert _normalize_guest("\\\\.\\C:\\x\\..\\Windows") == "\\\\.\\C:\\Windows"
    assert _normalize_guest("C:\\x\\..\\Windows") == "C:\\Windows"


# ----------------------------------------- 3: the simulator: doubled separators after X:


@pytest.mark.parametrize("value", ["C:\\\\Windows", "C://Windows", "C:\\\\\\Windows\\\\"])
def test_a_doubled_separator_after_the_drive_is_no_network_path(
    cli: Cli, web: str, value: str
) -> None:
    result = cli("exec", "-w", value, web, "--", "cmd", "/c", "cd")
    assert (result.code, result.out) == (0, "C:\\Windows\r\n"), result.err
    result = cli("exec", "-w", "C:\\\\\\\\", web, "--", "cmd", "/c", "cd")
    assert (result.code, result.out) == (0, "C:\\\r\n"), result.err


def test_the_simulated_guest_still_refuses_a_share_it_cannot_reach(cli: Cli, web: str) -> None:
    for command in (["type", "\\\\srv\\share\\x"], ["type", "\\\\?\\UNC\\srv\\share\\x"]):
        result = cli("exec", web, "--", "cmd", "/c", *command)
        assert result.code == 1
        assert "The network path was not found." in result.err + result.out


# ------------------------------------- 4: reserved characters in UNC and device components


@pytest.mark.parametrize(
    ("value", "part", "chars"),
    [
        ("\\\\srv\\share\\a<b", "a<b", "<"),
        ("//srv/share/x/a|b", "a|b", "|"),
        ("\\\\?\\C:\\a*b", "a*b", "*"),
        ("\\\\.\\C:\\dir\\a?b", "a?b", "?"),
        ("\\\\?\\UNC\\srv\\share\\x:y", "x:y", ":"),
    ],
)
def test_reserved_characters_are_refused_after_a_unc_or_device_root(
    cli: Cli, web: str, value: str, part: str, chars: str
) -> None:
    with pytest.raises(errors.SpecError) as caught:
        process_parameters("cmd /c cd", workdir=value)
    why = f"component {part!r} contains a character Windows forbids ({chars})"
    assert caught.value.reason == why
    result = cli("exec", "-w", value, web, "--", "cmd", "/c", "cd")
    assert result.code == 2, result.err
    (line,) = result.err_lines
    assert line.startswith(f"hcs-sandbox: error: invalid --workdir '{value}': {why} ("), line


@pytest.mark.parametrize(
    "value",
    [
        "\\\\?\\C:\\CON",  # \\?\ bypasses the device names ...
        "\\\\?\\C:\\dir.",  # ... and the trimming of trailing periods
        "\\\\srv\\share\\dir ",
        "\\\\?\\Volume{0b1c2d3e-0000-0000-0000-100000000000}\\x",
        "\\\\?\\UNC\\srv\\share\\x",
    ],
)
def test_what_a_device_root_legitimately_bypasses_is_still_passed_on(value: str) -> None:
    assert process_parameters("cmd /c cd", workdir=value)["WorkingDirectory"] == value


def test_cli_docs_say_which_rules_a_unc_or_device_workdir_gets() -> None:
    text = " ".join((ROOT / "docs" / "cli.md").read_text(encoding="utf-8").split())
    assert "the reserved characters are refused in the components after" in text


# ---------------------------------------------------------------- 5: replaced= as bytes


@pytest.mark.parametrize(
    "replaced", [b"memory_mb", bytearray(b"memory_mb"), memoryview(b"memory_mb")]
)
def test_replaced_as_bytes_is_a_type_error_with_the_decoded_name(
    tmp_path: Path, replaced: object
) -> None:
    expected = "not bytes .*: write replaced={'memory_mb'}"
    with pytest.raises(TypeError, match=expected):
        parse_wsb("<Configuration/>", replaced=replaced)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=expected):
        read_wsb(str(tmp_path / "missing.wsb"), replaced=replaced)  # type: ignore[arg-type]
