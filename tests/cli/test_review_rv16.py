"""CLI fixes from review RV16 (findings 1, 4, 5, 6, 7, 8, 9, 11 and two of 13).

Each test fails on the code before the fix (9a8e7be).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from cli_support import CliEnv, Result

Cli = Callable[..., Result]

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _wsb(tmp_path: Path, body: str) -> Path:
    """A .wsb with ``body`` and one read-only mapped folder (no warning of its own)."""
    host = tmp_path / "host"
    host.mkdir(exist_ok=True)
    path = tmp_path / "box.wsb"
    path.write_text(
        "<Configuration>\n"
        f"{body}"
        "  <MappedFolders><MappedFolder>\n"
        f"    <HostFolder>{host}</HostFolder><SandboxFolder>C:\\x</SandboxFolder>\n"
        "    <ReadOnly>true</ReadOnly>\n"
        "  </MappedFolder></MappedFolders>\n"
        "</Configuration>\n",
        encoding="utf-8",
    )
    return path


# The .wsb element each device/network/memory warning names.
_ELEMENTS = (
    "<VGpu>",
    "<Networking>",
    "<AudioInput>",
    "<VideoInput>",
    "<PrinterRedirection>",
    "<ClipboardRedirection>",
    "MemoryInMB",
)
_LOOSE_WSB = (
    "  <VideoInput>Enable</VideoInput>\n"
    "  <PrinterRedirection>Enable</PrinterRedirection>\n"
    "  <MemoryInMB>512</MemoryInMB>\n"
)
_OFF_FLAGS = (
    "--display",  # a .wsb's desktop display is a warning too (session 17)
    "headless",
    "--no-gpu",
    "--no-clipboard",
    "--no-audio-input",
    "--no-video-input",
    "--no-printer",
    "--network",
    "none",
    "--memory",
    "2048",
)


def _wsb_warnings(result: Result) -> list[str]:
    return [line for line in result.err_lines if line.startswith("warning: ") and "box.wsb" in line]


# ---------------------------------------------------------------- 1: moot .wsb warnings


def test_wsb_warnings_are_printed_when_no_flag_overrides(cli: Cli, tmp_path: Path) -> None:
    wsb = _wsb(tmp_path, _LOOSE_WSB)
    result = cli("plan", str(wsb), "--json")
    assert result.code == 0, result.err
    warnings = _wsb_warnings(result)
    for element in _ELEMENTS:  # Windows Sandbox's defaults and the .wsb turn these on
        assert any(element in w for w in warnings), (element, warnings)


@pytest.mark.parametrize("verb", ["plan", "create"])
def test_wsb_warnings_a_flag_made_moot_are_not_printed(cli: Cli, tmp_path: Path, verb: str) -> None:
    wsb = _wsb(tmp_path, _LOOSE_WSB)
    result = cli(verb, str(wsb), *_OFF_FLAGS, "--json")
    assert result.code == 0, result.err
    assert _wsb_warnings(result) == []
    if verb == "create":
        name = result.json()["name"]
        spec = cli("inspect", name).json()[0]["spec"]
        assert spec["gpu"] is False
        assert spec["network"] == "none"
        assert spec["memory_mb"] == 2048
        assert cli("rm", name).code == 0


def test_one_flag_drops_only_its_own_wsb_warning(cli: Cli, tmp_path: Path) -> None:
    wsb = _wsb(tmp_path, "")
    result = cli("plan", str(wsb), "--no-gpu", "--json")
    assert result.code == 0, result.err
    warnings = _wsb_warnings(result)
    assert not any("<VGpu>" in w for w in warnings), warnings
    assert any("<Networking>" in w for w in warnings), warnings
    assert any("<ClipboardRedirection>" in w for w in warnings), warnings


def test_run_with_flags_off_prints_no_wsb_warning(cli_proc: Cli, tmp_path: Path) -> None:
    wsb = _wsb(tmp_path, "")
    result = cli_proc(
        "run", "--rm", str(wsb), "--no-gpu", "--no-clipboard", "--no-audio-input",
        "--network", "none", "--display", "headless", "--", "cmd", "/c", "ver",
    )  # fmt: skip
    assert result.code == 0, result.err
    assert "Microsoft Windows" in result.out
    assert _wsb_warnings(result) == []


# ---------------------------------------------------------------- 4: --json on failure


def test_json_failures_print_null_on_stdout(cli: Cli, tmp_path: Path) -> None:
    assert cli("create", "--name", "taken").code == 0
    failing = [
        ("create", "--json", "--name", "taken"),
        ("run", "--json", "--cpus", "99"),
        ("plan", "--json", "--cpus", "99"),
        ("exec", "--json", "nosuch", "--", "cmd", "/c", "ver"),
        ("cp", "--json", "nosuch:C:\\x.txt", str(tmp_path / "x.txt")),
        ("logs", "--json", "nosuch"),
        ("port", "--json", "nosuch"),
        ("ls", "--json", "--filter", "x=y"),
        ("ls", "--json", "--bogus"),  # a usage error (argparse)
    ]
    for argv in failing:
        result = cli(*argv)
        assert result.code == 2, (argv, result)
        assert json.loads(result.out) is None, (argv, result.out)
        assert result.err_lines, argv
        assert "error" in result.err_lines[-1], (argv, result.err)
    assert cli("rm", "taken").code == 0


def test_json_failures_of_per_name_verbs_list_what_succeeded(cli: Cli) -> None:
    assert cli("create", "--name", "here").code == 0
    for argv in (("wait", "--json"), ("start", "--json"), ("inspect",)):
        result = cli(*argv, "nosuch")
        assert result.code == 2
        assert result.json() == [], argv
    result = cli("rm", "--json", "nosuch", "here")
    assert result.code == 2
    assert [d["name"] for d in result.json()] == ["here"]


def test_failures_without_json_leave_stdout_empty(cli: Cli) -> None:
    for argv in (("create", "--cpus", "99"), ("ls", "--filter", "x=y"), ("exec", "nosuch")):
        result = cli(*argv)
        assert result.code == 2
        assert result.out == "", argv


def test_json_after_the_guest_command_separator_is_the_guests(cli: Cli) -> None:
    result = cli("exec", "nosuch", "--", "cmd", "/c", "echo", "--json")
    assert result.code == 2
    assert result.out == ""


def test_exec_json_with_a_failing_guest_command_prints_its_object(cli: Cli) -> None:
    assert cli("run", "-d", "--name", "ex").code == 0
    result = cli("exec", "--json", "ex", "--", "cmd", "/c", "exit", "3")
    assert result.code == 3
    assert result.json()["exit_code"] == 3
    assert cli("rm", "-f", "ex").code == 0


# ---------------------------------------------------------------- 5: --debug per name


@pytest.mark.parametrize("verb", ["rm", "stop", "inspect", "start", "wait"])
def test_debug_prints_a_traceback_for_per_name_verbs(cli: Cli, verb: str) -> None:
    result = cli("--debug", verb, "nosuch")
    assert result.code == 2
    assert "Traceback (most recent call last)" in result.err
    assert "SandboxNotFoundError" in result.err
    assert result.err_lines[-1].startswith("hcs-sandbox: error: no sandbox named")
    plain = cli(verb, "nosuch")
    assert "Traceback" not in plain.err


def test_debug_traceback_for_an_hcs_failure_of_a_per_name_verb(cli_proc: Cli) -> None:
    assert cli_proc("create", "--name", "d1").code == 0
    result = cli_proc(
        "--debug",
        "start",
        "d1",
        extra_env={"HCS_SANDBOX_SIM_FAULTS": "HcsStartComputeSystem:1:0x80004005"},
    )
    assert result.code == 1, result.err
    assert "Traceback (most recent call last)" in result.err
    assert "HcsError" in result.err or "Hcs" in result.err.split("Traceback")[1]
    assert cli_proc("rm", "-f", "d1").code == 0


# ---------------------------------------------------------------- 6, 7: help and docs


def test_publish_help_names_both_networks_it_works_with(cli: Cli) -> None:
    result = cli("run", "--help")
    assert result.code == 0
    text = " ".join(result.out.split())
    assert "needs --network nat or internet-only" in text


def test_every_loosening_flag_is_marked_in_cli_md(cli: Cli) -> None:
    """Each run/create flag whose --help says LOOSENS ISOLATION is marked in cli.md's table."""
    help_text = cli("run", "--help").out
    # argparse help: "  --flag ...  help text" with continuation lines indented deeper.
    entries = re.split(r"\n  (?=-)", help_text)
    loosening = set()
    for entry in entries:
        flat = " ".join(entry.split())
        if "LOOSENS ISOLATION" in flat or "LOOSEN ISOLATION" in flat:
            loosening.update(re.findall(r"--[a-z][a-z-]+", flat.split("  ")[0])[:1])
    assert {"--network", "--publish", "--gpu", "--logon-command"} <= loosening, loosening
    rows = {
        line.split("|")[1]: line
        for line in (DOCS / "cli.md").read_text(encoding="utf-8").splitlines()
        if line.startswith("| `")
    }
    for flag in sorted(loosening):
        row = next((r for cell, r in rows.items() if flag in cell), None)
        assert row is not None, flag
        assert re.search(r"\*\*[^*]*loosen", row, re.IGNORECASE), (flag, row)


# ---------------------------------------------------------------- 8: ls and HCS availability


@pytest.mark.parametrize("value", ["ture", "relative/dir"])
def test_ls_refuses_a_malformed_simulator_setting(cli_proc: Cli, value: str) -> None:
    for argv in (("ls",), ("ls", "--json"), ("ls", "-a", "-q")):
        result = cli_proc(*argv, extra_env={"HCS_SANDBOX_SIMULATOR": value})
        assert result.code == 3, (argv, result)
        assert "HCS_SANDBOX_SIMULATOR" in result.err
        assert "Traceback" not in result.err
        if "--json" in argv:
            assert json.loads(result.out) is None


@pytest.mark.skipif(sys.platform == "win32", reason="HCS exists on Windows")
def test_ls_without_any_hcs_exits_3(cli_proc: Cli) -> None:
    result = cli_proc("ls", extra_env={"HCS_SANDBOX_SIMULATOR": "0"})
    assert result.code == 3, result
    assert "HCS unavailable" in result.err
    assert "--simulator" in result.err
    assert result.out == ""


def test_ls_simulator_flag_still_lists(cli_proc: Cli, cli_env: CliEnv) -> None:
    result = cli_proc(
        "--simulator",
        "--state-dir",
        str(cli_env.state),
        "ls",
        "--json",
        extra_env={"HCS_SANDBOX_SIMULATOR": "0"},
    )
    assert result.code == 0, result.err
    assert result.json() == []


# ---------------------------------------------------------------- 9: busy port remedy


def test_port_in_use_remedy_does_not_suggest_the_busy_port(cli: Cli) -> None:
    assert cli("run", "-d", "--name", "i1", "--network", "nat", "-p", "8081:80").code == 0
    try:
        result = cli("run", "--rm", "--network", "nat", "-p", "8081:80", "--", "cmd", "/c", "ver")
        assert result.code != 0
        assert "HCN_E_PORT_ALREADY_EXISTS" in result.err
        assert "different host port" in result.err
        assert "-p 8081" not in result.err
        assert cli("run", "-d", "--name", "i2", "--network", "nat").code == 0
        published = cli("port", "i2", "-p", "8081:81")
        assert published.code != 0
        assert "publish a different host port (8081/tcp is taken)" in published.err
        assert "-p 8081" not in published.err
    finally:
        assert cli("rm", "-f", "i1").code == 0
        cli("rm", "-f", "i2")


# ---------------------------------------------------------------- 11: wait after a kill


def test_wait_after_kill_prints_the_forced_exit(cli: Cli) -> None:
    assert cli("run", "-d", "--name", "kw").code == 0
    assert cli("kill", "kw").code == 0
    result = cli("wait", "kw")
    assert result.code == 0
    assert result.out.strip() == "0x00000000 ForcedExit"
    data = cli("wait", "--json", "kw").json()
    assert data[0]["status"] == 0
    assert data[0]["exit_type"] == "ForcedExit"
    assert cli("rm", "kw").code == 0


def test_wait_after_a_graceful_stop_prints_0(cli: Cli) -> None:
    assert cli("run", "-d", "--name", "gw").code == 0
    assert cli("stop", "gw").code == 0
    result = cli("wait", "gw")
    assert result.code == 0
    assert result.out.strip() == "0"
    assert cli("rm", "gw").code == 0


def test_status_text_names_unclean_exits_with_status_0() -> None:
    from hcs_sandbox.cli.wait import status_text

    assert status_text(0, "GracefulExit") == "0"
    assert status_text(0, "Unknown") == "0"  # a schema 2.1 host reports no ExitType
    assert status_text(0, "ForcedExit") == "0x00000000 ForcedExit"
    assert status_text(0, "UnexpectedExit") == "0x00000000 UnexpectedExit"


# ---------------------------------------------------------------- 13: messages name the flags


def test_memory_error_names_the_flag(cli: Cli) -> None:
    result = cli("create", "--memory", "512")
    assert result.code == 2
    assert result.err_lines[-1].startswith("hcs-sandbox: error: invalid --memory 512: ")
    assert "memory_mb" not in result.err


def test_other_flag_errors_name_the_flag(cli: Cli) -> None:
    result = cli("create", "--cpus", "99")
    assert result.err_lines[-1].startswith("hcs-sandbox: error: invalid --cpus 99: ")
    result = cli("create", "--logon-command", "")
    assert "invalid --logon-command ''" in result.err
    assert "logon_command" not in result.err


def test_a_wsb_memory_error_is_not_renamed(cli: Cli, tmp_path: Path) -> None:
    wsb = _wsb(tmp_path, "  <MemoryInMB>512</MemoryInMB>\n")
    result = cli("plan", str(wsb), "--cpus", "99")
    assert result.code == 2
    assert "invalid --cpus 99" in result.err


def test_map_error_shows_the_path_as_typed(cli: Cli) -> None:
    result = cli("create", "--map", "C:\\src")
    assert result.code == 2
    assert "invalid --map 'C:\\src': " in result.err
    assert "C:\\\\src" not in result.err
    # the docs show the same line
    assert "invalid --map 'C:\\src'" in (DOCS / "cli.md").read_text(encoding="utf-8")
