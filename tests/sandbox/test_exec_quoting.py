"""Windows command-line quoting (CommandLineToArgvW rules) and ProcessParameters: pure."""

from __future__ import annotations

import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hcs_sandbox import errors
from hcs_sandbox.sandbox.guest import (
    ExecResult,
    list2cmdline,
    merged_environment,
    process_parameters,
    split_cmdline,
)

# Examples from learn.microsoft.com "Parsing C++ command-line arguments" (the results table).
MS_EXAMPLES = [
    ('prog "a b c" d e', ["prog", "a b c", "d", "e"]),
    (r'prog "ab\"c" "\\" d', ["prog", 'ab"c', "\\", "d"]),
    (r'prog a\\\b d"e f"g h', ["prog", r"a\\\b", "de fg", "h"]),
    (r"prog a\\\"b c d", ["prog", r"a\"b", "c", "d"]),
    (r'prog a\\\\"b c" d e', ["prog", r"a\\b c", "d", "e"]),
    ('prog a"b"" c d', ["prog", 'ab" c d']),
]


@pytest.mark.parametrize(("line", "argv"), MS_EXAMPLES)
def test_split_matches_microsoft_examples(line: str, argv: list[str]) -> None:
    assert split_cmdline(line) == argv


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["cmd", "/c", "echo", "hi"], "cmd /c echo hi"),
        (["prog", ""], 'prog ""'),
        (["prog", "a b"], 'prog "a b"'),
        (["prog", 'a"b'], 'prog "a\\"b"'),
        (["prog", "C:\\dir\\"], "prog C:\\dir\\"),
        (["prog", "C:\\my dir\\"], 'prog "C:\\my dir\\\\"'),
        (["C:\\Program Files\\x.exe", "-v"], '"C:\\Program Files\\x.exe" -v'),
        (["prog", "tab\there"], 'prog "tab\there"'),
    ],
)
def test_list2cmdline_examples(argv: list[str], line: str) -> None:
    assert list2cmdline(argv) == line
    assert split_cmdline(line) == argv


_arg = st.text(
    alphabet=st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)), max_size=20
)
_program = st.text(
    alphabet=st.characters(blacklist_characters='\0"\t ', blacklist_categories=("Cs",)),
    min_size=1,
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(_program, st.lists(_arg, max_size=6))
def test_round_trip(program: str, rest: list[str]) -> None:
    argv = [program, *rest]
    assert split_cmdline(list2cmdline(argv)) == argv


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet='ab \t\\"', max_size=8), min_size=1, max_size=5))
def test_agrees_with_subprocess_where_subprocess_is_right(rest: list[str]) -> None:
    # subprocess.list2cmdline quotes only on space/tab/empty; for those inputs the parsed
    # result must be the same as ours.
    argv = ["prog", *rest]
    assert split_cmdline(subprocess.list2cmdline(argv)) == split_cmdline(list2cmdline(argv))


@pytest.mark.parametrize(
    "argv",
    [[], [""], ['a"b', "x"], ["prog", "nul\0here"]],
)
def test_list2cmdline_refuses(argv: list[str]) -> None:
    with pytest.raises(errors.SpecError):
        list2cmdline(argv)


def test_list2cmdline_refuses_a_plain_string() -> None:
    with pytest.raises(TypeError):
        list2cmdline("cmd /c ver")  # type: ignore[arg-type]


def test_process_parameters_plain() -> None:
    params = process_parameters(
        ["cmd", "/c", "ver"], env={"A": "1"}, workdir="C:\\w", user="sandbox\\u", stdin=False
    )
    assert params == {
        "CommandLine": "cmd /c ver",
        "WorkingDirectory": "C:\\w",
        "Environment": {"A": "1"},
        "User": "sandbox\\u",
        "CreateStdInPipe": False,
        "CreateStdOutPipe": True,
        "CreateStdErrPipe": True,
    }


def test_process_parameters_tty() -> None:
    params = process_parameters("cmd", tty=True, console_size=(120, 40))
    assert params["EmulateConsole"] is True
    assert params["ConsoleSize"] == [40, 120]  # [height, width]
    assert params["CreateStdErrPipe"] is False


@pytest.mark.parametrize(
    "kwargs",
    [
        {"console_size": (80, 25)},  # without tty
        {"tty": True, "console_size": (0, 25)},
        {"tty": True, "console_size": (80, 70000)},
        {"env": {"A=B": "x"}},
        {"env": {"": "x"}},
    ],
)
def test_process_parameters_refuses(kwargs: dict[str, object]) -> None:
    with pytest.raises(errors.SpecError):
        process_parameters("cmd", **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("command", ["", "   ", "a\0b"])
def test_empty_or_nul_command_refused(command: str) -> None:
    with pytest.raises(errors.SpecError):
        process_parameters(command)


def test_merged_environment_is_case_insensitive() -> None:
    assert merged_environment({"Path": "a", "X": "1"}, {"PATH": "b"}) == {"X": "1", "PATH": "b"}
    assert merged_environment(None, None) is None
    assert merged_environment({}, {"A": "1"}) == {"A": "1"}


def test_exec_result_text_and_check() -> None:
    result = ExecResult(0, b"h\xc3\xa9\r\nx\xff", b"", command_line="c")
    assert result.ok
    assert result.stdout_text == "hé\nx\ufffd"
    assert result.text("latin-1")[0] == "hÃ©\nxÿ"
    assert result.check() is result
    bad = ExecResult(5, b"", b"boom\r\n", command_line="c")
    with pytest.raises(errors.HcsSandboxError, match="exit code 5: boom"):
        bad.check()
    assert bad.to_dict()["stderr"] == "boom\n"
