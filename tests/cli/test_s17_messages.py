"""Session 17: help texts that say what loosens isolation or how a command is quoted, and
error lines that say what failed, why and what to do once each (QA analyst F8/F10,
tester F8/F9)."""

from __future__ import annotations

from collections.abc import Callable

from cli_support import Result

Cli = Callable[..., Result]


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_cp_help_says_the_transfer_folder_loosens_isolation(cli: Cli) -> None:
    text = _flat(cli("cp", "--help").out)
    assert "LOOSENS ISOLATION" in text
    assert "transfer folder" in text
    assert "no quota" in text
    assert "until the sandbox stops" in text


def test_exec_and_run_help_say_the_quoting_is_not_cmds(cli: Cli) -> None:
    for verb in ("exec", "run"):
        text = _flat(cli(verb, "--help").out)
        assert "quoted for the C runtime" in text, verb
        assert "not for cmd.exe" in text, verb
        assert "can run more commands in the guest" in text, verb


def test_run_with_a_command_but_no_dashes_says_to_put_it_after_them(cli: Cli) -> None:
    alone = cli("run", "--rm", "notepad.exe")
    assert alone.code == 2
    [line] = alone.err_lines
    assert "notepad.exe: no such .wsb file" in line
    assert "put it after --: hcs-sandbox run [options] -- notepad.exe" in line
    words = cli("run", "--rm", "cmd", "/c", "ver")
    assert words.code == 2
    [line] = words.err_lines
    assert "unrecognized arguments: /c ver" in line
    assert "put it after --: hcs-sandbox run [options] -- cmd /c ver" in line
    # A missing .wsb file is still reported as one (no hint about commands).
    missing = cli("run", "--rm", "nope.wsb")
    assert missing.code == 2
    assert "cannot read the file" in missing.err
    assert "after --" not in missing.err


def test_a_negative_cpus_is_below_the_minimum_not_a_non_number(cli: Cli) -> None:
    result = cli("create", "--cpus=-1")
    assert result.code == 2
    [line] = result.err_lines
    assert "not a whole number" not in line
    assert "invalid --cpus -1: below the minimum of 1" in line
    memory = cli("create", "--memory=-1")
    assert memory.code == 2
    assert "below the minimum" in memory.err
    assert "not a whole number" in cli("create", "--cpus=x").err


def test_cp_guest_paths_are_quoted_as_typed_and_the_remedy_is_not_the_reason(
    cli: Cli, web: str, tmp_path: object
) -> None:
    import pathlib

    src = pathlib.Path(str(tmp_path)) / "f.txt"
    src.write_text("x", encoding="utf-8")
    con = cli("cp", str(src), f"{web}:C:\\con")
    assert con.code == 2
    assert "guest path 'C:\\con'" in con.err
    assert "C:\\\\con" not in con.err
    relative = cli("cp", str(src), f"{web}:relative")
    assert relative.code == 2
    [line] = relative.err_lines
    assert line.count("an absolute Windows path such as C:\\data") == 1


def test_resume_of_a_running_sandbox_says_running_once(cli: Cli, web: str) -> None:
    result = cli("resume", web)
    assert result.code != 0
    [line] = result.err_lines
    assert line.count("running") == 1
    assert f"'hcs-sandbox pause {web}' pauses it" in line
