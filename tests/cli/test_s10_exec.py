"""Round s10, task "exec": ``exec -w`` values refused before anything runs, a folder missing
in the guest said as such, and a flag that replaces a bad .wsb value.

1. ``exec -w DIR`` / ``Sandbox.exec(workdir=)``: an empty value, a device-namespace path and a
   name Windows forbids are refused (exit 2, ``invalid --workdir 'DIR': ...``) before the
   sandbox is opened; a folder the guest does not have (HcsCreateProcess
   ``ERROR_DIRECTORY``) says so and how to create it, not "try again".
2. ``plan/run/create FILE.wsb --memory 4096`` (and every other flag that replaces a .wsb
   element's value): the file's invalid value is ignored with a warning, not refused.

Each test fails on the code before the change (ab09615).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cli_support import Result

from hcs_sandbox import errors
from hcs_sandbox.sandbox.guest import process_parameters
from hcs_sandbox.sandbox.wsb import parse_wsb

Cli = Callable[..., Result]

# ------------------------------------------------------------ 1: exec -w, before the guest

#: (value as typed, why, remedy): what the guest cannot be asked about, refused first.
_REFUSED = [
    (
        "",
        "it is empty",
        "give a full guest path such as C:\\Users\\Public, or leave it out to start in the "
        "guest's default folder",
    ),
    (
        "C:\\a<b",
        "component 'a<b' contains a character Windows forbids (<)",
        'name a folder whose names Windows allows: none of < > : " | ? *, no device name '
        "such as CON or NUL",
    ),
    ("C:\\a\\b|c", "component 'b|c' contains a character Windows forbids (|)", None),
    ("C:\\x:stream", "component 'x:stream' contains a character Windows forbids (:)", None),
    ('C:\\"q"', 'component \'"q"\' contains a character Windows forbids (")', None),
    ("C:\\w?\\", "component 'w?' contains a character Windows forbids (?)", None),
    ("C:\\CON", "component 'CON' is a reserved Windows device name", None),
    ("C:\\work\\nul.txt", "component 'nul.txt' is a reserved Windows device name", None),
    ("C:\\lpt1", "component 'lpt1' is a reserved Windows device name", None),
    ("C:\\a\tb", "it contains a control character", None),
]


@pytest.mark.parametrize(("value", "why", "remedy"), _REFUSED)
def test_the_api_refuses_a_workdir_windows_cannot_use(
    value: str, why: str, remedy: str | None
) -> None:
    with pytest.raises(errors.SpecError) as caught:
        process_parameters("cmd /c cd", workdir=value)
    exc = caught.value
    assert exc.field == "workdir"
    assert exc.value == value
    assert exc.reason is not None
    assert exc.reason.startswith(why), exc.reason
    assert exc.message.startswith("invalid working directory "), exc.message
    if remedy is not None:
        assert exc.remedy == remedy


@pytest.mark.parametrize(
    "value",
    [
        "C:\\",
        "C:/",
        "c:\\Users\\Public",
        "C:/Users/Public",
        "C:\\work\\",
        "C:\\Windows\\..\\Users",  # naming-a-file: '.' and '..' belong in full paths
        "C:\\.\\x",
        "D:\\CONTOSO\\console.log.d",  # CONTOSO, console.log.d: not device names
        "C:\\Program Files (x86)\\x y",
        # CreateProcess: lpCurrentDirectory "can also specify a UNC path"
        "\\\\srv\\share\\dir",
        "//srv/share",
        "\\\\?\\C:\\Users",
    ],
)
def test_the_api_passes_a_full_guest_path_on(value: str) -> None:
    assert process_parameters("cmd /c cd", workdir=value)["WorkingDirectory"] == value


def test_no_workdir_still_means_the_guests_default() -> None:
    assert "WorkingDirectory" not in process_parameters("cmd /c cd", workdir=None)


def _quoted(value: str) -> str:
    return repr(value) if "'" in value or not value.isprintable() else f"'{value}'"


@pytest.mark.parametrize(("value", "why", "remedy"), _REFUSED)
def test_exec_refuses_the_workdir_before_opening_the_sandbox(
    cli: Cli, web: str, value: str, why: str, remedy: str | None
) -> None:
    for extra in ((), ("--json",)):
        result = cli("exec", *extra, "-w", value, web, "--", "cmd", "/c", "cd")
        assert result.code == 2, result.err
        assert result.out == ("null\n" if extra else "")
        assert "note: simulated" not in result.err  # refused before the sandbox is opened
        lines = result.err_lines
        assert len(lines) == 1, result.err
        line = lines[0]
        assert line.startswith(f"hcs-sandbox: error: invalid --workdir {_quoted(value)}: {why}")
        assert "working directory" not in line
        assert "workdir'" not in line
        if remedy is not None:
            assert line.endswith(f"({remedy})"), line
    # Nothing ran: the guest has no process left and the sandbox still answers.
    assert cli("exec", web, "--", "cmd", "/c", "echo", "ok").out.strip() == "ok"


def test_exec_empty_workdir_is_refused_also_for_a_missing_sandbox(cli: Cli) -> None:
    result = cli("exec", "--workdir", "", "nosuch", "--", "cmd", "/c", "cd")
    assert result.code == 2
    assert result.err_lines == [
        "hcs-sandbox: error: invalid --workdir '': it is empty (give a full guest path such as "
        "C:\\Users\\Public, or leave it out to start in the guest's default folder)"
    ]


def test_exec_in_a_folder_the_guest_does_not_have_says_how_to_create_it(cli: Cli, web: str) -> None:
    for value, folder in (("C:\\nosuch", "C:\\nosuch"), ("C:\\nosuch\\deep\\", "C:\\nosuch\\deep")):
        result = cli("exec", "-w", value, web, "--", "cmd", "/c", "cd")
        assert result.code == 1, result.err
        (line,) = result.err_lines
        assert line.startswith(
            f"hcs-sandbox: error: cannot run a command in sandbox '{web}': the working "
            f"directory '{value}' does not exist there, or is not a folder ("
        ), line
        assert "0x8007010B" in line  # the HRESULT is still told
        assert line.endswith(
            f'(create it first, e.g. hcs-sandbox exec {web} -- cmd /c mkdir "{folder}", '
            "or give an existing folder)"
        ), line
        assert "try again" not in line
        assert "report it" not in line
    # The remedy works as written (the words after "e.g. hcs-sandbox").
    assert cli("exec", web, "--", "cmd", "/c", "mkdir", "C:\\nosuch\\deep").code == 0
    result = cli("exec", "-w", "C:\\nosuch\\deep\\", web, "--", "cmd", "/c", "cd")
    assert (result.code, result.out) == (0, "C:\\nosuch\\deep\r\n")


def test_a_file_as_workdir_is_not_a_folder(cli: Cli, web: str) -> None:
    assert cli("exec", web, "--", "cmd", "/c", "echo x> C:\\file.txt").code == 0
    result = cli("exec", "--json", "-w", "C:\\file.txt", web, "--", "cmd", "/c", "cd")
    assert result.code == 1
    assert "the working directory 'C:\\file.txt' does not exist there, or is not a folder" in (
        result.err
    )


@pytest.fixture
def box() -> Iterator[object]:
    from hcs_sandbox.sandbox.sandbox import Sandbox
    from hcs_sandbox.sandbox.spec import SandboxSpec

    with Sandbox.run(SandboxSpec(name="wd")) as sandbox:
        yield sandbox


def test_api_exec_and_spawn_in_a_missing_folder(cli_env: object, box: object) -> None:
    from hcs_sandbox.sandbox.sandbox import Sandbox

    assert isinstance(box, Sandbox)
    calls: list[Callable[[], object]] = [
        lambda: box.exec("cmd /c cd", workdir="D:\\missing"),
        lambda: box.spawn("cmd /c cd", workdir="D:\\missing"),
    ]
    for call in calls:
        with pytest.raises(errors.HcsError) as caught:
            call()
        assert caught.value.hresult == 0x8007010B
        assert "the working directory 'D:\\missing' does not exist there" in caught.value.message
        assert caught.value.remedy == (
            'create it first, e.g. hcs-sandbox exec wd -- cmd /c mkdir "D:\\missing", or give '
            "an existing folder"
        )
    with pytest.raises(errors.SpecError, match="it is empty"):
        box.exec("cmd /c cd", workdir="")
    with pytest.raises(errors.SpecError, match="prefix alone"):
        box.spawn("cmd /c cd", workdir="\\\\.\\")


# ---------------------------------------------- 2: a flag replaces an invalid .wsb value


def _wsb(tmp_path: Path, element: str) -> str:
    path = tmp_path / "bad.wsb"
    path.write_text(
        "<Configuration>\n"
        "  <Networking>Disable</Networking>\n"
        f"  {element}\n"  # line 3
        "</Configuration>\n",
        encoding="utf-8",
    )
    return str(path)


#: (element, its flags, the refusal without them, the warning with them (after "FILE:3: ")).
_REPLACED = [
    (
        "<MemoryInMB>abc</MemoryInMB>",
        ["--memory", "4096"],
        "invalid value 'abc' for <MemoryInMB> (use a whole number of megabytes, such as 4096)",
        "invalid value 'abc' for <MemoryInMB>; ignored, as --memory replaces it",
    ),
    (
        "<MemoryInMB>999999999</MemoryInMB>",
        ["--memory", "4G"],
        "invalid value '999999999' for <MemoryInMB>: above the maximum of 1048576 MB (use a "
        "whole number of megabytes up to 1048576, such as 4096)",
        "invalid value '999999999' for <MemoryInMB>: above the maximum of 1048576 MB; ignored, "
        "as --memory replaces it",
    ),
    (
        "<VGpu>bogus</VGpu>",
        ["--no-gpu"],
        "invalid value 'bogus' for <VGpu> (use Enable, Disable or Default (also Enabled, "
        "Disabled, true, false))",
        "invalid value 'bogus' for <VGpu>; ignored, as --no-gpu replaces it",
    ),
    (
        "<ClipboardRedirection>sure</ClipboardRedirection>",
        ["--clipboard"],
        "invalid value 'sure' for <ClipboardRedirection> (use Enable, Disable or Default (also "
        "Enabled, Disabled, true, false))",
        "invalid value 'sure' for <ClipboardRedirection>; ignored, as --clipboard replaces it",
    ),
    (
        "<AudioInput>1</AudioInput>",
        ["--no-audio-input"],
        None,
        "invalid value '1' for <AudioInput>; ignored, as --no-audio-input replaces it",
    ),
    (
        "<VideoInput>1</VideoInput>",
        ["--no-video-input"],
        None,
        "invalid value '1' for <VideoInput>; ignored, as --no-video-input replaces it",
    ),
    (
        "<PrinterRedirection>1</PrinterRedirection>",
        ["--no-printer"],
        None,
        "invalid value '1' for <PrinterRedirection>; ignored, as --no-printer replaces it",
    ),
    (
        "<LogonCommand><Command></Command></LogonCommand>",
        ["--logon-command", "cmd /c ver"],
        "<Command> is empty (give a command, or remove <LogonCommand>)",
        "<Command> is empty; ignored, as --logon-command replaces it",
    ),
    (
        "<LogonCommand><Command>a&#10;b</Command></LogonCommand>",
        ["--logon-command", "cmd /c ver"],
        None,
        "invalid value 'a\\nb' for <Command>: contains a control character (line breaks are "
        "not allowed); ignored, as --logon-command replaces it",
    ),
]


@pytest.mark.parametrize("case", _REPLACED)
def test_plan_a_flag_replaces_an_invalid_wsb_value(
    cli: Cli, tmp_path: Path, case: tuple[str, list[str], str | None, str]
) -> None:
    element, flags, refusal, warning = case
    wsb = _wsb(tmp_path, element)
    before = cli("plan", wsb)
    assert before.code == 2
    if refusal is not None:
        assert before.err_lines[-1] == f"hcs-sandbox: error: {wsb}:3: {refusal}"
    result = cli("plan", wsb, *flags, "--json")
    assert result.code == 0, result.err
    assert f"warning: {wsb}:3: {warning}" in result.err_lines, result.err
    assert result.json() is not None


def test_plan_uses_the_flags_value(cli: Cli, tmp_path: Path) -> None:
    wsb = _wsb(tmp_path, "<MemoryInMB>lots</MemoryInMB>")
    plan = cli("plan", wsb, "--memory", "3072", "--json").json()
    assert plan["spec"]["memory_mb"] == 3072
    assert '"SizeInMB": 3072' in json.dumps(plan["compute_system"])
    ignored = [w for w in plan["warnings"] if "'lots'" in w]
    assert ignored == [
        f"{wsb}:3: invalid value 'lots' for <MemoryInMB>; ignored, as --memory replaces it"
    ]


def test_networking_replaced_by_network(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "net.wsb"
    path.write_text("<Configuration><Networking>bad</Networking></Configuration>\n")
    assert cli("plan", str(path)).code == 2
    result = cli("plan", str(path), "--network", "none")
    assert result.code == 0, result.err
    assert (
        f"warning: {path}:1: invalid value 'bad' for <Networking>; ignored, as --network "
        "replaces it" in result.err_lines
    )


@pytest.mark.parametrize("verb", ["run", "create"])
def test_run_and_create_too(cli: Cli, tmp_path: Path, verb: str) -> None:
    wsb = _wsb(tmp_path, "<MemoryInMB>abc</MemoryInMB>")
    assert cli(verb, wsb, "--name", "m").code == 2
    argv = [verb, *(["-d"] if verb == "run" else []), wsb, "--name", "m", "--memory", "2048"]
    result = cli(*argv)
    assert result.code == 0, result.err
    assert (
        f"warning: {wsb}:3: invalid value 'abc' for <MemoryInMB>; ignored, as --memory "
        "replaces it" in result.err_lines
    )
    assert cli("inspect", "m", "--json").json()[0]["spec"]["memory_mb"] == 2048
    assert cli("rm", "-f", "m").code == 0


def test_a_malformed_file_is_refused_even_with_the_flag(cli: Cli, tmp_path: Path) -> None:
    wsb = _wsb(tmp_path, "<MemoryInMB>1</MemoryInMB><MemoryInMB>2</MemoryInMB>")
    result = cli("plan", wsb, "--memory", "4096")
    assert result.code == 2
    assert "appears twice" in result.err


def test_parse_wsb_replaced() -> None:
    text = (
        "<Configuration><MemoryInMB>x</MemoryInMB><VGpu>?</VGpu>"
        "<LogonCommand><Command></Command></LogonCommand></Configuration>"
    )
    with pytest.raises(errors.WsbError):
        parse_wsb(text)
    result = parse_wsb(text, replaced={"memory_mb", "gpu", "logon_command"})
    assert result.spec.memory_mb == 4096
    assert result.spec.gpu is False
    assert result.spec.logon_command is None
    ignored = [w for w in result.warnings if "ignored" in w]
    assert ignored == [
        "<wsb>:1: invalid value '?' for <VGpu>; ignored, as the value given in its place "
        "replaces it",
        "<wsb>:1: invalid value 'x' for <MemoryInMB>; ignored, as the value given in its place "
        "replaces it",
        "<wsb>:1: <Command> is empty; ignored, as the value given in its place replaces it",
    ]
    # Kept by warnings_unless (they are about the file, not about what it asks for), and no
    # "VGpu is enabled" warning for an ignored value.
    assert set(ignored) <= set(result.warnings_unless({"memory_mb", "gpu", "logon_command"}))
    assert not any("virtual GPU" in w for w in result.warnings)
    named = parse_wsb(
        text, replaced={"memory_mb": "memory_mb=2048", "gpu": "x", "logon_command": "y"}
    )
    assert any(w.endswith("; ignored, as memory_mb=2048 replaces it") for w in named.warnings)
