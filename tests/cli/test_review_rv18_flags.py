"""CLI fix from review RV18, finding 4 (finding 5: test_review_rv18_json.py).

A bad value of ``--map``, ``--base``, ``--publish``, ``--env`` or ``--label`` is one line
naming the flag and quoting its value as typed (before: the spec field,
``invalid mapped_folders.guest_path 'relative'``, and repr's doubled backslashes); the API's
messages still name the field.

Each test fails on the code before the fix (9b5641b).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from cli_support import CliEnv, Result

Cli = Callable[..., Result]

#: Spec field names that a flag's error line must not show.
_FIELDS = ("mapped_folders", "base.path", "ports", "environment", "labels", "network to")


def _error_line(result: Result) -> str:
    assert result.code == 2, result.err
    assert result.out == ""
    errors = [line for line in result.err_lines if not line.startswith("warning: ")]
    assert len(errors) == 1, result.err
    line = errors[0]
    assert line.startswith("hcs-sandbox: error: "), line
    for field in _FIELDS:
        assert field not in line, line
    return line.removeprefix("hcs-sandbox: error: ")


# ----------------------------------------------------------- 4: the flag, the value as typed


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["--map", "C:\\src:relative"],
            "invalid --map 'C:\\src:relative': the guest path must be an absolute Windows path",
        ),
        (
            ["--map", "relative:C:\\x"],
            "invalid --map 'relative:C:\\x': the host path is not absolute",
        ),
        (
            ["--map", "C:\\a:C:\\x", "--map", "C:\\b:C:\\x\\y"],
            "invalid --map 'C:\\b:C:\\x\\y': nested with --map 'C:\\a:C:\\x' (C:\\x)",
        ),
        (
            ["--map", "C:\\Windows:C:\\x"],
            "invalid --map 'C:\\Windows:C:\\x': host folder C:\\Windows cannot be mapped: ",
        ),
        (
            ["--base", "image:relative"],
            "invalid --base 'image:relative': the host path is not absolute",
        ),
        (
            ["--base", "vhdx:C:\\disks\\base.txt"],
            "invalid --base 'vhdx:C:\\disks\\base.txt': a 'vhdx' base must be a .vhdx file",
        ),
        (
            ["-p", "8080:80", "-p", "9090:90/udp"],
            # every -p is named (s10-msgs; test_s10_msgs.py), the remedy once
            "invalid --publish '8080:80' and '9090:90/udp': port mappings need a network, and "
            "network is 'none' (add --network nat or --network internet-only, or drop --publish)",
        ),
        (
            ["--network", "nat", "-p", "8080:80", "-p", "8080:81"],
            "invalid --publish '8080:81': host port 8080/tcp is already used by "
            "--publish '8080:80' (use each host port once per protocol)",
        ),
        (
            ["-e", "PATH=C:\\bin", "-e", "path=C:\\other"],
            "invalid --env 'path=C:\\other': the same variable as 'PATH'",
        ),
        (["-e", "A\x01=1"], "invalid --env 'A\\x01=1': not a valid variable name"),
        (["-e", "A=1\x01"], "invalid --env 'A=1\\x01': the value contains a control character"),
        (["-l", "k\x01=v"], "invalid --label 'k\\x01=v': not a valid label key"),
        (["-l", "k=\x01"], "invalid --label 'k=\\x01': the value contains a control character"),
    ],
)
def test_plan_value_errors_name_the_flag(cli: Cli, argv: list[str], expected: str) -> None:
    line = _error_line(cli("plan", *argv))
    assert line.startswith(expected), line


def test_run_and_create_path_errors_name_the_flag(
    cli: Cli, cli_env: CliEnv, tmp_path: Path
) -> None:
    """The run-time checks (the folder, the base exist here) name the flag too."""
    absent = tmp_path / "absent"
    cases = [
        (
            ["--map", f"{absent}:C:\\data"],
            f"invalid --map '{absent}:C:\\data': host folder {absent} cannot be mapped: "
            "it does not exist (create the folder or fix the path)",
        ),
        (
            ["--base", f"image:{absent}"],
            f"invalid --base 'image:{absent}': base image folder {absent} cannot be used: "
            "it does not exist",
        ),
        (
            ["--base", f"vhdx:{absent}.vhdx"],
            f"invalid --base 'vhdx:{absent}.vhdx': base VHDX {absent}.vhdx cannot be used: ",
        ),
        (
            ["--map", f"{cli_env.state}:C:\\data"],
            f"invalid --map '{cli_env.state}:C:\\data': host folder {cli_env.state} cannot be "
            "mapped: ",
        ),
    ]
    for verb in ("run", "create"):
        for argv, expected in cases:
            line = _error_line(cli(verb, *argv))
            assert line.startswith(expected), line
    assert cli("ls", "-a", "--json").json() == []


def test_run_publish_without_network_names_the_flags(cli: Cli) -> None:
    line = _error_line(cli("run", "--rm", "-p", "8080:80", "--", "cmd"))
    assert line.startswith("invalid --publish '8080:80': "), line
    assert line.endswith("(add --network nat or --network internet-only, or drop --publish)")


def test_wsb_values_keep_their_own_words(cli: Cli, tmp_path: Path) -> None:
    """A .wsb folder is not a flag's: a clash between two of its folders, or a missing one,
    still says what the .wsb reader and the API say."""
    host = tmp_path / "host"
    host.mkdir()
    wsb = tmp_path / "box.wsb"
    wsb.write_text(
        "<Configuration><MappedFolders>\n"
        f"<MappedFolder><HostFolder>{host}</HostFolder><SandboxFolder>C:\\x</SandboxFolder>"
        "</MappedFolder>\n"
        "</MappedFolders></Configuration>\n",
        encoding="utf-8",
    )
    line = _error_line(cli("plan", str(wsb), "--map", f"{host}:C:\\x\\y"))
    assert line.startswith(f"invalid --map '{host}:C:\\x\\y': nested with a .wsb MappedFolder")
    result = cli("plan", str(wsb), "--map", f"{host}:C:\\z")
    assert result.code == 0, result.err


def test_api_messages_keep_the_field_names() -> None:
    from hcs_sandbox.errors import SpecError
    from hcs_sandbox.sandbox.spec import BaseImage, MappedFolder, PortMapping, SandboxSpec

    with pytest.raises(SpecError, match=r"^invalid mapped_folders\.guest_path 'relative'"):
        MappedFolder(host_path="C:\\src", guest_path="relative")
    with pytest.raises(SpecError, match=r"^invalid base\.path 'relative'"):
        BaseImage(kind="image", path="relative")
    with pytest.raises(SpecError, match=r"^invalid ports \['8080:80/tcp'\]") as caught:
        SandboxSpec(ports=(PortMapping(8080, 80),))
    assert caught.value.remedy == "set network to 'nat' or 'internet-only', or drop the ports"
    spec = SandboxSpec(mapped_folders=(MappedFolder("/nonexistent-rv18", "C:\\x"),))
    with pytest.raises(SpecError, match=r"of mapped_folders\[0\] cannot be mapped"):
        spec.check_host_paths()
