"""Session 17, review RV-warn: the "put it after --" hint only for what looks like a guest
command (R1), shown only when every shell takes it as typed (R7); the exec/run help states
the cmd.exe hazard as docs/exec.md does (R2); the docs say which warnings a sandbox without
loosening settings still gets (R3); the .wsb desktop warning says what hcs-sandbox does, not
what Windows Sandbox "always" does (R4); a non-ASCII digit is a usage error (R6)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from cli_support import Result

Cli = Callable[..., Result]

ROOT = Path(__file__).resolve().parents[2]
HINT = "to run a command in the sandbox, put it after --"


def _flat(text: str) -> str:
    return " ".join(text.split())


def _min_wsb(tmp_path: Path) -> str:
    path = tmp_path / "min.wsb"
    path.write_text("<Configuration></Configuration>", encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(
    ("argv", "unknown"),
    [
        (("--rm", "WSB", "--bogus"), "--bogus"),  # a mistyped option after a real .wsb
        (("--rm", "--display", "headless", "WSB", "-x"), "-x"),
        (("--rm", "--netwrok", "nat"), "--netwrok"),  # a typo of --network, no .wsb
        (("--rm", "--netwrok", "nat", "more"), "--netwrok"),
    ],
)
def test_a_mistyped_option_gets_argparses_message_not_the_hint(
    cli: Cli, tmp_path: Path, argv: tuple[str, ...], unknown: str
) -> None:
    wsb = _min_wsb(tmp_path)
    result = cli("run", *(wsb if word == "WSB" else word for word in argv))
    assert result.code == 2
    [line] = result.err_lines
    assert f"unrecognized arguments: {unknown}" in line
    assert HINT not in line
    assert cli("ls", "-q").out.split() == []  # nothing was made


def test_the_hint_repeats_the_command_in_the_order_it_was_typed(cli: Cli, tmp_path: Path) -> None:
    wsb = _min_wsb(tmp_path)
    after_wsb = cli("run", "--rm", wsb, "cmd", "/c", "ver")
    assert after_wsb.code == 2
    [line] = after_wsb.err_lines
    assert f"{HINT}: hcs-sandbox run [options] -- cmd /c ver (see" in line
    # Options between the command's words: which were meant for run is a guess, no hint.
    between = cli("run", "--rm", "notepad.exe", "--display", "headless", "/x")
    assert between.code == 2
    [line] = between.err_lines
    assert "unrecognized arguments: /x" in line
    assert HINT not in line


def test_the_hint_shows_no_quoting_that_a_shell_would_read_differently(cli: Cli) -> None:
    # shlex.join would give 'echo a & b': single quotes mean nothing to cmd.exe.
    spaced = cli("run", "--rm", "cmd", "/c", "echo a & b")
    assert spaced.code == 2
    [line] = spaced.err_lines
    assert f"{HINT}: hcs-sandbox run [options] -- COMMAND... (see" in line
    assert "'echo" not in line
    # A backslash is kept by cmd.exe and PowerShell but eaten by a POSIX shell.
    program = cli("run", "--rm", "C:\\tools\\app.exe")
    assert program.code == 2
    [line] = program.err_lines
    assert line.endswith(f"{HINT}: hcs-sandbox run [options] -- COMMAND...)")


def _exec_md_metacharacters() -> list[str]:
    text = (ROOT / "docs" / "exec.md").read_text(encoding="utf-8")
    match = re.search(r"cmd\.exe metacharacters\s*\(`([^`]+)`\) are \*not\* escaped", text)
    assert match is not None, "docs/exec.md no longer lists the metacharacters"
    return match.group(1).split()


def test_exec_and_run_help_and_cli_md_state_the_cmd_hazard_as_exec_md_does(cli: Cli) -> None:
    from hcs_sandbox.sandbox.guest import list2cmdline

    metacharacters = _exec_md_metacharacters()
    assert set("&|<>^%") <= set(metacharacters)
    # What the texts claim: a word without spaces goes to cmd.exe as it is.
    assert list2cmdline(["cmd", "/c", "echo", "a&ver"]) == "cmd /c echo a&ver"
    cli_md = _flat((ROOT / "docs" / "cli.md").read_text(encoding="utf-8"))
    texts = {verb: _flat(cli(verb, "--help").out) for verb in ("exec", "run")}
    texts["docs/cli.md"] = cli_md.replace("`", "")
    for where, text in texts.items():
        listed = re.search(r"cmd\.exe metacharacters \(([^)]+)\) are not escaped", text)
        assert listed is not None, where
        assert listed.group(1).split() == metacharacters, where
        assert "a word without spaces is passed unquoted" in text, where
        # Not the narrower claim that only a '"' before '&' or '|' is a hazard.
        assert "followed by '&' or '|'" not in text, where
        assert 'a " followed by & or |' not in text, where


def _warnings_paragraph(name: str, start: str) -> str:
    text = (ROOT / "docs" / name).read_text(encoding="utf-8")
    return _flat(text[text.index(start) :].split("\n\n")[0])


def test_the_docs_name_the_warnings_a_closed_sandbox_still_gets(cli: Cli) -> None:
    rounded = cli("create", "--name", "odd", "--memory", "2049")
    assert rounded.code == 0, rounded.err
    assert any("rounded up to 2050 MB" in line for line in rounded.err_lines)
    persistent = cli("create", "--name", "kept", "--persistent")
    assert persistent.code == 0, persistent.err
    assert any("persistent host-base sandbox" in line for line in persistent.err_lines)
    cli_md = _warnings_paragraph("cli.md", "**Warnings when the sandbox is made.**")
    assert "has none" not in cli_md
    assert "--persistent" in cli_md
    assert "rounded up" in cli_md
    api_md = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    [row] = [line for line in api_md.splitlines() if line.startswith("| `warnings -> ")]
    assert "for a closed sandbox" not in row
    assert "memory rounded up" in row
    assert cli("rm", "odd", "kept").code == 0


def test_the_wsb_desktop_warning_says_what_hcs_sandbox_does(cli: Cli, tmp_path: Path) -> None:
    made = cli("create", "--name", "desk", _min_wsb(tmp_path))
    assert made.code == 0, made.err
    [line] = [w for w in made.err_lines if "desktop display is on" in w]
    assert "always" not in line  # no claim about what Windows Sandbox always does
    assert "hcs-sandbox declares display pipes" in line
    assert "use --display headless" in line
    for name in ("docs/cli.md", "docs/wsb.md", "examples/hello.wsb", "README.md"):
        text = _flat((ROOT / name).read_text(encoding="utf-8"))
        assert "Windows Sandbox always shows" not in text, name
    assert cli("rm", "desk").code == 0


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (("create", "--cpus=²"), "invalid --cpus '²': not a whole number"),
        (("create", "--cpus=-²"), "invalid --cpus '-²': not a whole number"),
        (("create", "--cpus=٣"), "invalid --cpus '٣': not a whole number"),  # int() reads 3
        (("create", "--memory=²G"), "invalid --memory '²G': not a whole number"),
        (("create", "--network", "nat", "-p", "²:80"), "'²' is not a port number"),
        (("plan", "--host-schema", "².1"), "invalid --host-schema '².1'"),
    ],
)
def test_a_non_ascii_digit_is_a_usage_error(cli: Cli, argv: tuple[str, ...], says: str) -> None:
    result = cli(*argv)
    assert result.code == 2
    [line] = result.err_lines
    assert says in line
    assert "internal error" not in line
    assert cli("ls", "-q").out.split() == []


@pytest.mark.parametrize(
    "command",
    [
        ("ping", "-n", "1", "localhost"),  # the command's own first argument is an option
        ("powershell", "-Command", "Get-Date"),
        ("app.exe", "--foo=bar"),
    ],
)
def test_a_command_whose_first_argument_is_an_option_gets_the_hint(
    cli: Cli, command: tuple[str, ...]
) -> None:
    """Review RV-warn2 N1: the test is on the typed command's first word (the program),
    not on the first word argparse did not recognise (its first argument)."""
    result = cli("run", "--rm", *command)
    assert result.code == 2
    [line] = result.err_lines
    assert f"{HINT}: hcs-sandbox run [options] -- {' '.join(command)} (see" in line
    assert cli("ls", "-q").out.split() == []


def test_an_existing_configuration_file_is_no_program_name(cli: Cli, tmp_path: Path) -> None:
    """Review RV-warn2 N2: run reads an existing file before -- as its configuration (any
    name), so the hint must not suggest running it as the guest program."""
    box = tmp_path / "box.xml"
    box.write_text("<Configuration></Configuration>", encoding="utf-8")
    result = cli("run", "--rm", str(box), "cmd", "/c", "ver")
    assert result.code == 2
    [line] = result.err_lines
    assert f"-- {box}" not in line
    assert f"{HINT}: hcs-sandbox run [options] -- cmd /c ver (see" in line
