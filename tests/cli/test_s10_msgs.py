"""Bad input in the words the user typed (round s10, task "msgs"): a .wsb's value is named by
its element and line, not the spec field; ``exec -w`` names the flag; several ``-p`` without
a network are all named.

Each test fails on the code before the change (26b7ca8).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from cli_support import CliEnv, Result

from hcs_sandbox.errors import WsbError
from hcs_sandbox.sandbox.wsb import parse_wsb

Cli = Callable[..., Result]

#: The API's words, which a CLI user never typed.
_API_WORDS = ("mapped_folders", "memory_mb", "logon_command", "working directory", "workdir'")


def _error_line(result: Result) -> str:
    """The one error line of a refused command (exit 2, nothing on stdout but ``null``
    with --json), without its ``hcs-sandbox: error: `` prefix."""
    assert result.code == 2, result.err
    assert result.out in ("", "null\n"), result.out
    lines = [line for line in result.err_lines if not line.startswith("warning: ")]
    assert len(lines) == 1, result.err
    line = lines[0]
    assert line.startswith("hcs-sandbox: error: "), line
    for word in _API_WORDS:
        assert word not in line, line
    return line.removeprefix("hcs-sandbox: error: ")


def _wsb(tmp_path: Path, host: str, *, name: str = "box.wsb") -> Path:
    path = tmp_path / name
    path.write_text(
        "<Configuration>\n"  # line 1
        "  <Networking>Disable</Networking>\n"
        "  <MappedFolders>\n"
        "    <MappedFolder>\n"
        f"      <HostFolder>{host}</HostFolder>\n"  # line 5
        "      <SandboxFolder>C:\\data</SandboxFolder>\n"
        "      <ReadOnly>true</ReadOnly>\n"
        "    </MappedFolder>\n"
        "  </MappedFolders>\n"
        "</Configuration>\n",
        encoding="utf-8",
    )
    return path


# ------------------------------------------------- 1: plan FILE.wsb with a refused folder


@pytest.mark.parametrize("host", ["C:\\Windows", "C:\\Program Files\\app", "/etc", "/usr/lib"])
def test_plan_names_the_wsb_host_folder_of_a_system_folder(
    cli: Cli, tmp_path: Path, host: str
) -> None:
    wsb = _wsb(tmp_path, host)
    for extra in ((), ("--json",)):
        line = _error_line(cli("plan", str(wsb), *extra))
        assert line.startswith(f"{wsb}:5: <HostFolder> {host} cannot be mapped: "), line
        assert "system folder" in line, line
        assert line.endswith("(map a folder of your own, such as a project folder)"), line


def test_plan_names_the_wsb_host_folder_of_the_state_directory(
    cli: Cli, cli_env: CliEnv, tmp_path: Path
) -> None:
    wsb = _wsb(tmp_path, str(cli_env.state))
    line = _error_line(cli("plan", str(wsb)))
    assert line.startswith(f"{wsb}:5: <HostFolder> {cli_env.state} cannot be mapped: "), line
    assert "the hcs-sandbox state directory" in line, line


def test_plan_and_run_say_the_same_for_a_wsb_folder(
    cli: Cli, cli_env: CliEnv, tmp_path: Path
) -> None:
    """run/create already named the element (they read the .wsb with check_paths); plan
    now says the same, and still does not ask whether a folder exists (another machine's)."""
    wsb = _wsb(tmp_path, str(cli_env.state))
    lines = {verb: _error_line(cli(verb, str(wsb))) for verb in ("plan", "run", "create")}
    assert len(set(lines.values())) == 1, lines
    absent = _wsb(tmp_path, str(tmp_path / "not-here"), name="absent.wsb")
    assert cli("plan", str(absent)).code == 0
    assert "does not exist" in _error_line(cli("run", str(absent)))
    assert cli("ls", "-a", "--json").json() == []


def test_parse_wsb_checks_paths_as_written(tmp_path: Path) -> None:
    text = _wsb(tmp_path, "C:\\Windows\\System32").read_text(encoding="utf-8")
    with pytest.raises(WsbError, match=r"^x\.wsb:5: <HostFolder> C:\\Windows\\System32 cannot"):
        parse_wsb(text, source_path="x.wsb", check_paths=True, local=False)
    missing = _wsb(tmp_path, "C:\\nowhere\\data").read_text(encoding="utf-8")
    folder = parse_wsb(missing, check_paths=True, local=False).spec.mapped_folders[0]
    assert folder.host_path == "C:\\nowhere\\data"
    with pytest.raises(WsbError, match="does not exist"):
        parse_wsb(missing, check_paths=True)  # local (run, create): it must exist here


# ---------------------------------------- 1: every other .wsb value the spec refuses


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "<MemoryInMB>999999999</MemoryInMB>",
            ":2: invalid value '999999999' for <MemoryInMB>: above the maximum of 1048576 MB "
            "(use a whole number of megabytes up to 1048576, such as 4096)",
        ),
        (
            "<LogonCommand><Command>a&#10;b</Command></LogonCommand>",
            ":2: invalid value 'a\\nb' for <Command>: contains a control character (line "
            "breaks are not allowed) (put multi-step logic in a script in a mapped folder",
        ),
        (
            f"<LogonCommand><Command>{'x' * 32768}</Command></LogonCommand>",
            f":2: invalid value '{'x' * 76}... for <Command>: longer than Windows' "
            "32767-character command line limit",
        ),
    ],
)
def test_wsb_values_the_spec_refuses_name_the_element(
    cli: Cli, tmp_path: Path, body: str, expected: str
) -> None:
    wsb = tmp_path / "box.wsb"
    wsb.write_text(f"<Configuration>\n{body}\n</Configuration>\n", encoding="utf-8")
    for verb in ("plan", "run", "create"):
        line = _error_line(cli(verb, str(wsb)))
        assert line.startswith(f"{wsb}{expected}"), line
    assert cli("ls", "-a", "--json").json() == []


# ------------------------------------------------------------ 2: exec -w relative\path


@pytest.mark.parametrize("flag", ["-w", "--workdir"])
@pytest.mark.parametrize("value", ["relative\\path", "C:", "..\\up", "it's"])
def test_exec_relative_workdir_names_the_flag(cli: Cli, web: str, flag: str, value: str) -> None:
    shown = repr(value) if "'" in value else f"'{value}'"
    for extra in ((), ("--json",)):
        result = cli("exec", *extra, flag, value, web, "--", "cmd", "/c", "cd")
        line = _error_line(result)
        assert line == (
            f"invalid --workdir {shown}: it must be a full guest path "
            "(an absolute Windows path such as C:\\Users\\Public)"
        ), line
        assert result.out == ("null\n" if extra else "")
        assert "note: simulated" not in result.err  # refused before the sandbox is opened


# ---------------------------------------------------- 3: several -p without a network


@pytest.mark.parametrize(
    ("ports", "shown"),
    [
        (["8080:80", "9090:90/udp"], "'8080:80' and '9090:90/udp'"),
        (["8080:80", "9090:90/udp", "5353:53/udp"], "'8080:80', '9090:90/udp' and '5353:53/udp'"),
        (["8080:80"], "'8080:80'"),
    ],
)
def test_every_publish_without_a_network_is_named(cli: Cli, ports: list[str], shown: str) -> None:
    argv = [word for port in ports for word in ("-p", port)]
    for verb in ("plan", "run", "create"):
        line = _error_line(cli(verb, *argv))
        assert line == (
            f"invalid --publish {shown}: port mappings need a network, and network is 'none' "
            "(add --network nat or --network internet-only, or drop --publish)"
        ), line
    assert cli("ls", "-a", "--json").json() == []


def test_port_publish_on_a_sandbox_without_network_names_every_publish(cli: Cli, web: str) -> None:
    """``port NAME -p ... -p ...`` on a sandbox without a network: every -p is refused."""
    line = _error_line(cli("port", web, "-p", "8080:80", "-p", "9090:90/udp", "-p", "1:1"))
    assert line == (
        f"cannot publish --publish '8080:80', '9090:90/udp' and '1:1' for sandbox '{web}': "
        "it has no network (network none) (create the sandbox with --network nat (or "
        "internet-only) to publish ports)"
    ), line
    line = _error_line(cli("port", "--json", web, "-p", "8080:80"))  # one: as before
    assert line.startswith(f"cannot publish port 8080:80/tcp for sandbox '{web}': "), line
    assert cli("port", "--json", web).json()["ports"] == []
