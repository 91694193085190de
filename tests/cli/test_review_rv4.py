"""CLI conventions fixed after review RV4: exec options after NAME, one guest exit-code
mapping for ``exec`` and ``run -- COMMAND``, ``"simulated"`` in cp/exec JSON, error exit
codes from the exception classes, and ``port --unpublish`` errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from cli_support import Result

Cli = Callable[..., Result]


@pytest.mark.parametrize("option", ["--json", "--simulator", "-t", "--timeout"])
def test_exec_option_after_name_is_one_line_exit_2(cli: Cli, web: str, option: str) -> None:
    result = cli("exec", web, option, "--", "cmd", "/c", "ver")
    assert result.code == 2
    assert len(result.err_lines) == 1
    assert f"option '{option}' after NAME: options go before NAME" in result.err
    assert result.out == ""


def test_exec_words_after_the_separator_go_to_the_guest(cli: Cli, web: str) -> None:
    # A '-' word after '--' is the guest's, not a misplaced option.
    result = cli("exec", web, "--", "-x")
    assert result.code == 1
    assert "'-x' is not recognized" in result.err
    assert cli("exec", web, "--", "cmd", "/c", "echo", "--json").out.strip() == "--json"


def test_run_and_exec_map_the_guest_code_the_same_way(
    cli: Cli, web: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hcs_sandbox.cli import common

    seen: list[int] = []

    def mapping(code: int) -> int:
        seen.append(code)
        return 40 + code

    monkeypatch.setattr(common, "host_exit_code", mapping)
    assert cli("exec", web, "--", "cmd", "/c", "exit 3").code == 43
    assert cli("exec", "--json", web, "--", "cmd", "/c", "exit 4").code == 44
    assert cli("run", "--rm", "--", "cmd", "/c", "exit 5").code == 45
    assert cli("run", "--rm", "--json", "--", "cmd", "/c", "exit 6").code == 46
    assert seen == [3, 4, 5, 6]


def test_host_exit_code_keeps_32_bits_on_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from hcs_sandbox.cli.common import host_exit_code

    monkeypatch.setattr(sys, "platform", "win32")
    # The same 32 bits, as a signed number since review RV29 (Python 3.10/3.11 exit with
    # 0xFFFFFFFF for an unsigned value of 0x80000000 or more: tests/cli/test_s11_win.py).
    assert host_exit_code(0xC000013A) & 0xFFFFFFFF == 0xC000013A
    assert host_exit_code(-1) & 0xFFFFFFFF == 0xFFFFFFFF
    monkeypatch.setattr(sys, "platform", "linux")
    assert host_exit_code(0xC000013A) == 1
    assert host_exit_code(-1) == 1
    assert host_exit_code(255) == 255


def test_run_json_is_the_exec_result_plus_name_and_id(cli: Cli) -> None:
    result = cli("run", "--rm", "--json", "--name", "one", "--", "cmd", "/c", "echo hi")
    assert result.code == 0, result.err
    doc = result.json()
    assert doc["name"] == "one"
    assert doc["stdout"] == "hi\n"
    assert doc["exit_code"] == 0
    assert doc["simulated"] is True
    assert {"duration", "command_line", "id", "stderr"} <= set(doc)


def test_exec_json_says_simulated(cli: Cli, web: str) -> None:
    result = cli("exec", "--json", web, "--", "cmd", "/c", "echo hi")
    assert result.code == 0
    assert result.json()["simulated"] is True


def test_cp_says_simulated(cli: Cli, web: str, tmp_path: Path) -> None:
    source = tmp_path / "f.txt"
    source.write_text("data")
    result = cli("cp", "--json", str(source), f"{web}:C:\\f.txt")
    assert result.code == 0, result.err
    assert result.json()["simulated"] is True
    assert "note: simulated" in result.err
    plain = cli("cp", f"{web}:C:\\f.txt", str(tmp_path / "g.txt"))
    assert plain.code == 0, plain.err
    assert "note: simulated" in plain.err
    assert (tmp_path / "g.txt").read_text() == "data"


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("abc", "invalid --unpublish 'abc': 'abc' is not a port number"),
        ("70000", "invalid --unpublish '70000': '70000' is not a port number"),
        ("80/xyz", "invalid --unpublish '80/xyz': protocol 'xyz' is not tcp or udp"),
        ("80:90", "invalid --unpublish '80:90'"),
    ],
)
def test_unpublish_errors_quote_what_was_typed(cli: Cli, value: str, needle: str) -> None:
    result = cli("port", "web", "--unpublish", value)
    assert result.code == 2
    assert len(result.err_lines) == 1
    assert needle in result.err
    assert ":1/" not in result.err


def test_parse_unpublish() -> None:
    from hcs_sandbox.cli.common import parse_unpublish

    assert parse_unpublish("8080") == (8080, "tcp")
    assert parse_unpublish("5353/UDP") == (5353, "udp")


def test_exit_codes_come_from_the_exception_classes(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hcs_sandbox import errors
    from hcs_sandbox.cli import ls

    assert errors.HcsUnavailableError("x").exit_code == 3
    assert errors.OperationTimeoutError("x", hresult=0x80370118).exit_code == 124

    def boom(_args: object) -> int:
        raise errors.OperationTimeoutError("the operation timed out\nin HCS", hresult=0x80370118)

    monkeypatch.setattr(ls, "handle", boom)
    result = cli("ls", "--json")
    assert result.code == 124
    # An HcsError built without a remedy gets the generic one (review RV16 finding 2).
    assert result.err_lines == [
        f"hcs-sandbox: error: the operation timed out in HCS ({errors.HCS_GENERIC_REMEDY})"
    ]
