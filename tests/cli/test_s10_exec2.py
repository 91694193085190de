"""Round s10, task "exec2": review RV27's findings on ``exec -w`` and ``.wsb`` ``replaced=``.

1. the "create it first ... mkdir" remedy only for a drive-letter path within MAX_PATH; a UNC
   path is told the guest could not open the share; ``\\\\``, ``\\\\.``, ``\\\\?`` alone refused;
2. ``\\\\.\\`` paths passed on as ``\\\\?\\`` ones;
3. COM0 and LPT0 are not device names (workdir, ``--map``, ``.wsb`` HostFolder and
   SandboxFolder, ``MappedFolder``);
4. a working directory may end a component with a period or a space (CreateProcess trims);
   mapped folders still may not;
5. and 7. the docs say what the code does;
6. the simulator's guest reads ``/`` in a working directory as ``\\``;
8. ``replaced=`` misuse raises TypeError/ValueError.

Each test fails on the code before the change (33a9048).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from cli_support import Result

from hcs_sandbox import errors
from hcs_sandbox.sandbox import hostpath
from hcs_sandbox.sandbox.guest import process_parameters
from hcs_sandbox.sandbox.wsb import parse_wsb, read_wsb

Cli = Callable[..., Result]
ROOT = Path(__file__).resolve().parents[2]


# ------------------------------------------------- 1: UNC values without a root, remedies

_NO_ROOT = [
    ("\\\\", "it is a UNC path without both a server and a share"),
    ("//", "it is a UNC path without both a server and a share"),
    ("\\\\srv", "it is a UNC path without both a server and a share"),
    ("\\\\srv\\", "it is a UNC path without both a server and a share"),
    ("\\\\?\\UNC\\srv", "it is a UNC path without both a server and a share"),
    ("\\\\.", "it is the \\\\.\\ prefix alone, with no drive, volume or share after it"),
    ("\\\\?", "it is the \\\\?\\ prefix alone, with no drive, volume or share after it"),
    ("\\\\?\\", "it is the \\\\?\\ prefix alone, with no drive, volume or share after it"),
    ("\\\\.\\", "it is the \\\\.\\ prefix alone, with no drive, volume or share after it"),
]


@pytest.mark.parametrize(("value", "why"), _NO_ROOT)
def test_a_unc_value_without_server_and_share_is_bad_input(
    cli: Cli, web: str, value: str, why: str
) -> None:
    with pytest.raises(errors.SpecError) as caught:
        process_parameters("cmd /c cd", workdir=value)
    assert caught.value.field == "workdir"
    assert caught.value.reason == why
    result = cli("exec", "-w", value, web, "--", "cmd", "/c", "cd")
    assert result.code == 2, result.err
    (line,) = result.err_lines
    assert line.startswith(f"hcs-sandbox: error: invalid --workdir '{value}': {why} ("), line
    assert "mkdir" not in line


def test_a_unc_share_the_guest_cannot_open_gets_no_mkdir_remedy(cli: Cli, web: str) -> None:
    for value in ("\\\\srv\\share\\dir", "//srv/share", "\\\\?\\UNC\\srv\\share"):
        result = cli("exec", "-w", value, web, "--", "cmd", "/c", "cd")
        assert result.code == 1, result.err
        (line,) = result.err_lines
        assert line.startswith(
            f"hcs-sandbox: error: cannot run a command in sandbox '{web}': the working "
            f"directory '{value}' is a network folder the guest could not open ("
        ), line
        assert "0x8007010B" in line
        assert "mkdir" not in line
        assert "--network nat (docs/networking.md)" in line
        assert "pushd" in line


def test_a_device_path_the_guest_lacks_gets_no_mkdir_remedy(cli: Cli, web: str) -> None:
    result = cli("exec", "-w", "\\\\?\\C:\\nosuch", web, "--", "cmd", "/c", "cd")
    assert result.code == 1, result.err
    (line,) = result.err_lines
    assert "the working directory '\\\\?\\C:\\nosuch' does not exist there" in line
    assert line.endswith("(give an existing folder)"), line


def test_a_path_longer_than_max_path_is_said_so(cli: Cli, web: str) -> None:
    # SetCurrentDirectory: "Setting a current directory longer than MAX_PATH causes
    # CreateProcessW to fail"; mkdir would not help.
    value = "C:\\" + "\\".join(["d" * 50] * 6)  # 308 characters
    result = cli("exec", "-w", value, web, "--", "cmd", "/c", "cd")
    assert result.code == 1, result.err
    (line,) = result.err_lines
    assert "is longer than MAX_PATH (260 characters)" in line
    assert "mkdir" not in line
    assert line.endswith(
        "(give a shorter path (map the folder to a short guest path such as C:\\work))"
    )
    # At the limit the mkdir remedy stands.
    value = "C:\\" + "e" * 255  # 258 characters
    result = cli("exec", "-w", value, web, "--", "cmd", "/c", "cd")
    assert f'mkdir "{value}"' in result.err


# ------------------------------------------------------------ 2: \\.\ passed on as \\?\


@pytest.mark.parametrize(
    "value", ["\\\\.\\C:\\Windows", "//./C:/Windows", "\\\\.\\UNC\\srv\\share", "\\\\.\\pipe\\x"]
)
def test_a_dot_device_path_is_passed_on(value: str) -> None:
    assert process_parameters("cmd /c cd", workdir=value)["WorkingDirectory"] == value


# --------------------------------------------------------- 3: COM0 and LPT0 are names


@pytest.mark.parametrize("name", ["COM0", "lpt0", "COM0.txt", "LPT0.d"])
def test_com0_and_lpt0_are_ordinary_names_everywhere(tmp_path: Path, cli: Cli, name: str) -> None:
    # workdir
    value = f"C:\\{name}"
    assert process_parameters("cmd", workdir=value)["WorkingDirectory"] == value
    # the path rules of mapped folders (SandboxSpec, .wsb, --map)
    assert hostpath.guest_path_problem(f"C:\\x\\{name}") is None
    assert hostpath.host_path_problem(f"D:\\{name}\\src") is None
    # .wsb SandboxFolder and (Windows) HostFolder
    result = parse_wsb(
        "<Configuration><MappedFolders>"
        f"<MappedFolder><HostFolder>D:\\{name}\\src</HostFolder>"
        f"<SandboxFolder>C:\\{name}</SandboxFolder></MappedFolder>"
        "</MappedFolders></Configuration>"
    )
    assert result.spec.mapped_folders[0].guest_path == f"C:\\{name}"
    # --map
    (tmp_path / "src").mkdir()
    result_cli = cli("plan", "--map", f"{tmp_path / 'src'}:C:\\{name}")
    assert result_cli.code == 0, result_cli.err


@pytest.mark.parametrize("name", ["COM1", "LPT9", "com¹", "NUL"])
def test_com1_to_9_stay_reserved_everywhere(tmp_path: Path, cli: Cli, name: str) -> None:
    assert hostpath.workdir_problem(f"C:\\{name}") is not None
    assert hostpath.guest_path_problem(f"C:\\x\\{name}") is not None
    assert hostpath.host_path_problem(f"D:\\{name}\\src") is not None
    with pytest.raises(errors.WsbError, match="reserved Windows device name"):
        parse_wsb(
            "<Configuration><MappedFolders>"
            f"<MappedFolder><HostFolder>D:\\src</HostFolder>"
            f"<SandboxFolder>C:\\{name}</SandboxFolder></MappedFolder>"
            "</MappedFolders></Configuration>"
        )
    (tmp_path / "src").mkdir()
    result = cli("plan", "--map", f"{tmp_path / 'src'}:C:\\{name}")
    assert result.code == 2
    assert "reserved Windows device name" in result.err


# ---------------------------------------------------- 4: trailing period or space trimmed


@pytest.mark.parametrize(
    "value", ["C:\\Windows.", "C:\\a.b.", "C:\\Windows ", "C:\\Windows.\\System32", "C:\\x. \\y"]
)
def test_a_workdir_may_end_a_component_with_a_period_or_space(value: str) -> None:
    # File path formats on Windows systems, "Trim characters": CreateProcess normalises it.
    assert process_parameters("cmd", workdir=value)["WorkingDirectory"] == value
    assert hostpath.workdir_problem(value) is None


def test_mapped_folders_still_refuse_a_trailing_period_or_space() -> None:
    # A guest folder is created under that name, and guest_key would take C:\data. and
    # C:\data for two folders.
    assert "ends with a space or a period" in (hostpath.guest_path_problem("C:\\data.") or "")
    assert "ends with a space or a period" in (hostpath.host_path_problem("D:\\src \\x") or "")


# ----------------------------------------------------------- 6: simulator: / separators


def test_the_simulated_guest_reads_slashes_in_a_workdir(cli: Cli, web: str) -> None:
    result = cli("exec", "-w", "C:/Windows/../Users", web, "--", "cmd", "/c", "cd")
    assert (result.code, result.out) == (0, "C:\\Users\r\n"), result.err
    result = cli("exec", "-w", "C:/Windows", web, "--", "cmd", "/c", "cd")
    assert (result.code, result.out) == (0, "C:\\Windows\r\n"), result.err


# ---------------------------------------------------------------------- 5 and 7: docs


def test_windows_notes_say_unc_workdirs_are_passed_on() -> None:
    text = (ROOT / "docs" / "windows-notes.md").read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if "`WorkingDirectory` |" in line]
    unc = [row for row in rows if row.startswith("| UNC")]
    assert len(unc) == 1, rows
    assert "refused before the guest" not in unc[0]
    assert "passed on" in unc[0]
    win11 = [line for line in text.splitlines() if "C:\\CON.d" in line]
    assert win11
    assert "UNCONFIRMED" in win11[0]
    assert "file-path-formats" in win11[0]


def test_exec_comments_do_not_say_unc_is_refused() -> None:
    guest = (ROOT / "src/hcs_sandbox/sandbox/guest.py").read_text(encoding="utf-8")
    exec_ = (ROOT / "src/hcs_sandbox/cli/exec_.py").read_text(encoding="utf-8")
    assert "full path, no\n        # UNC" not in guest
    assert "empty, relative, UNC,\n" not in exec_


def test_docs_say_an_ignored_toggle_is_off_not_windows_sandboxs_default() -> None:
    wsb_md = (ROOT / "docs" / "wsb.md").read_text(encoding="utf-8")
    assert "holds\nWindows Sandbox's default (a toggle: off" not in wsb_md
    assert "the safe value, not Windows\nSandbox's default" in wsb_md
    assert parse_wsb.__doc__ is not None
    doc = " ".join(parse_wsb.__doc__.split())
    assert "the safe value, not Windows Sandbox's default" in doc
    # and the code does what they say: Networking's Windows Sandbox default is on
    result = parse_wsb(
        "<Configuration><Networking>maybe</Networking></Configuration>", replaced={"network"}
    )
    assert result.spec.network == "none"


# ------------------------------------------------------------------ 8: replaced= misuse

_BAD_MEMORY = "<Configuration><MemoryInMB>abc</MemoryInMB></Configuration>"


def test_replaced_as_a_plain_string_is_a_type_error(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="not the string 'memory_mb'"):
        parse_wsb(_BAD_MEMORY, replaced="memory_mb")
    with pytest.raises(TypeError, match="not the string 'memory_mb'"):
        read_wsb(str(tmp_path / "missing.wsb"), replaced="memory_mb")  # before the file


@pytest.mark.parametrize(
    "replaced",
    [{"memory": "--memory"}, {"memory_mb", "netwrok"}, ["mapped_folders"], {"display": None}],
)
def test_replaced_with_an_unknown_field_is_a_value_error(tmp_path: Path, replaced: object) -> None:
    with pytest.raises(ValueError, match=r"which is not a spec field a \.wsb value can be"):
        parse_wsb(_BAD_MEMORY, replaced=replaced)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="which is not a spec field"):
        read_wsb(str(tmp_path / "missing.wsb"), replaced=replaced)  # type: ignore[arg-type]


def test_replaced_still_takes_any_iterable(tmp_path: Path) -> None:
    path = tmp_path / "mem.wsb"
    path.write_text(_BAD_MEMORY, encoding="utf-8")
    result = read_wsb(str(path), replaced=(name for name in ["memory_mb"]))
    assert result.spec.memory_mb == 4096
    assert result.warnings[-1].endswith("ignored, as the value given in its place replaces it")
