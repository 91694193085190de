"""The CLI's fast path (``hcs_sandbox.cli.main.fast_parse``): a plain ``ls``/``ps`` command
line is parsed without argparse into exactly the values argparse gives, and every other
command line (``-h``, abbreviations, errors, other verbs...) is left to argparse."""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
from collections.abc import Callable

import pytest
from cli_support import CliEnv, Result
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hcs_sandbox.cli import ls as ls_module
from hcs_sandbox.cli import main as main_module
from hcs_sandbox.cli.main import build_parser, chosen_verb, fast_parse

Cli = Callable[..., Result]

#: Words the command lines are made of: every option of ``ls`` and the global options, in
#: every spelling argparse accepts or refuses (abbreviations, ``=``, joined short flags),
#: values, and words that must send the line to argparse.
WORDS = (
    "ls",
    "ps",
    "rm",
    "inspect",
    "-a",
    "--all",
    "-q",
    "--quiet",
    "-f",
    "--filter",
    "--no-trunc",
    "--json",
    "--simulator",
    "--debug",
    "--state-dir",
    "-aq",
    "-qa",
    "-aa",
    "-aqa",
    "-af",
    "-fa",
    "-qf",
    "-ah",
    "-a=1",
    "-f=name=x",
    "-fname=x",
    "--filter=name=x",
    "--filter=label=a=b",
    "--filter=",
    "--filter=-x",
    "--json=1",
    "--all=",
    "--state-dir=/s",
    "--state-dir=",
    "--state-dir=ls",
    "--state-dir=-s",
    "-h",
    "--help",
    "--version",
    "--",
    "-",
    "-x",
    "--js",
    "--al",
    "--no",
    "--sim",
    "--s",
    "--deb",
    "--fil",
    "-1",
    "name=x",
    "label=a=b",
    "state=running",
    "",
    "/s",
    "x y",
    "-a b",
)


def argparse_result(argv: list[str]) -> tuple[dict[str, object] | None, str]:
    """What ``main`` gets from argparse: the Namespace's values (None when argparse exits)
    and anything it printed."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            parsed = build_parser(only=chosen_verb(argv)).parse_args(argv)
        except SystemExit:
            return None, out.getvalue() + err.getvalue()
    return vars(parsed), out.getvalue() + err.getvalue()


def check_same(argv: list[str]) -> bool:
    """The fast path gives argparse's values, or leaves the line to argparse; True when
    the fast path took it."""
    fast = fast_parse(argv)
    slow, printed = argparse_result(argv)
    if fast is None:
        return False
    assert slow is not None, f"argparse refuses {argv!r} ({printed!r}); fast path: {fast!r}"
    assert printed == ""
    assert vars(fast) == slow, argv
    # Same types too (store_true gives bools, append a fresh list).
    assert {k: type(v) for k, v in vars(fast).items()} == {k: type(v) for k, v in slow.items()}
    return True


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(WORDS), max_size=7))
@example(["ls"])
@example(["ps", "--json"])
@example(["ls", "-aq", "--filter=name=x", "-f", "label=a=b", "--no-trunc", "--json"])
@example(["--simulator", "--state-dir", "ls", "ls", "--state-dir=/s", "--debug"])
@example(["ls", "-f", ""])
@example(["ls", "-ah"])
@example(["ls", "--", "-a"])
def test_fast_parse_equals_argparse_on_any_words(argv: list[str]) -> None:
    check_same(argv)


#: A command line the fast path should take: globals, the verb, then the verb's options.
_GLOBAL = st.sampled_from(
    [["--simulator"], ["--debug"], ["--state-dir", "/s"], ["--state-dir=/t"], ["--state-dir", "ls"]]
)
_OPTION = st.sampled_from(
    [
        ["-a"],
        ["--all"],
        ["-q"],
        ["--quiet"],
        ["-aq"],
        ["-qa"],
        ["--no-trunc"],
        ["--json"],
        ["-f", "name=x"],
        ["--filter", "label=a=b"],
        ["--filter=state=running"],
        ["-f", "x y"],
        ["--simulator"],
        ["--debug"],
        ["--state-dir", "/u"],
        ["--state-dir=/v"],
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(_GLOBAL, max_size=3),
    st.sampled_from(["ls", "ps"]),
    st.lists(_OPTION, max_size=6),
)
def test_fast_parse_takes_plain_ls_lines(
    before: list[list[str]], verb: str, after: list[list[str]]
) -> None:
    argv = [word for words in before for word in words]
    argv += [verb, *(word for words in after for word in words)]
    assert check_same(argv), argv


@pytest.mark.parametrize(
    "argv",
    [
        ["ls", "-h"],
        ["ls", "--help"],
        ["--help"],
        ["--version"],
        ["ls", "--js"],  # an abbreviation: argparse's business
        ["ls", "-f"],  # missing value: argparse's error message
        ["ls", "-f", "-a"],
        ["ls", "--filter="],
        ["ls", "--json=1"],
        ["ls", "extra"],
        ["ls", "--", "-a"],
        ["ls", "-af", "name=x"],
        ["rm", "x"],  # no FAST_OPTIONS
        ["inspect", "x"],
        [],
    ],
)
def test_fast_parse_leaves_the_rest_to_argparse(argv: list[str]) -> None:
    assert fast_parse(argv) is None


def test_fast_options_are_the_ls_parser_options() -> None:
    """Each FAST_OPTIONS entry is an option of ``ls`` with that dest and kind."""
    import argparse

    sub = build_parser(only="ls")._subparsers
    assert sub is not None
    action = sub._group_actions[0]
    assert isinstance(action, argparse._SubParsersAction)
    parser = action.choices["ls"]
    kinds = {argparse._StoreTrueAction: "true", argparse._AppendAction: "append"}
    for option, (dest, kind) in ls_module.FAST_OPTIONS.items():
        declared = parser._option_string_actions[option]
        assert (declared.dest, kinds.get(type(declared))) == (dest, kind), option
    assert set(ls_module.fast_defaults()) == {
        a.dest for a in parser._actions if a.default is not argparse.SUPPRESS and a.dest != "help"
    } | {"handler"}


def test_main_gives_the_same_output_either_way(
    cli: Cli, cli_env: CliEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``main`` through the fast path and through argparse prints the same, exits the same."""
    from hcs_sandbox.sandbox.sandbox import Sandbox
    from hcs_sandbox.sandbox.spec import SandboxSpec

    made = [Sandbox.create(SandboxSpec(name=f"fp-{i}", labels={"n": str(i)})) for i in range(3)]
    try:
        made[0].start()
        lines = [
            ["ls"],
            ["ls", "-a"],
            ["ps", "-aq", "--no-trunc"],
            ["ls", "-a", "--json"],
            ["ls", "--json", "-f", "label=n=1", "-a"],
            ["ls", "-a", "--filter=name=fp-2", "--json"],
            ["ls", "-f", "nonsense"],  # exit 2, one error line
            ["--debug", "ls", "-q", "-a"],
        ]
        fast = {tuple(argv): cli(*argv) for argv in lines}
        assert all(fast_parse(argv) is not None for argv in lines)
        monkeypatch.setattr(main_module, "fast_parse", lambda _argv: None)
        for argv in lines:
            slow = cli(*argv)
            got = fast[tuple(argv)]
            assert (got.code, got.out, got.err) == (slow.code, slow.out, slow.err), argv
        assert fast[("ls", "-f", "nonsense")].code == 2
    finally:
        for sandbox in made:
            sandbox.remove(force=True)
            sandbox.close()


def test_plain_ls_process_does_not_import_argparse(cli_env: CliEnv) -> None:
    """``ls --json`` on a store used before: no argparse (nor gettext, locale), no sqlite3
    package (its dbapi2 imports datetime: the store uses _sqlite3), no datetime;
    ``ls --jso`` (argparse's business) still has argparse."""
    probe = (
        "import sys\n"
        "from hcs_sandbox.cli.main import main\n"
        "assert main(sys.argv[1:]) == 0\n"
        "print('LOADED', [m for m in ('argparse', 'gettext', 'locale', 'sqlite3', "
        "'datetime') if m in sys.modules])\n"
    )
    done = subprocess.run(  # no state directory yet: ls makes none (session 17)
        [sys.executable, "-c", probe, "ls", "--json"],
        capture_output=True,
        text=True,
        env=cli_env.env,
        check=True,
    )
    assert "LOADED []" in done.stdout, done.stdout + done.stderr
    assert not cli_env.state.exists()
    from hcs_sandbox.sandbox.store import open_store

    open_store(cli_env.state).close()  # a store used before (a create made it)
    assert (cli_env.state / "state.db").exists()
    done = subprocess.run(
        [sys.executable, "-c", probe, "ls", "--json"],
        capture_output=True,
        text=True,
        env=cli_env.env,
        check=True,
    )
    assert "LOADED []" in done.stdout, done.stdout + done.stderr
    done = subprocess.run(
        [sys.executable, "-c", probe, "ls", "--jso"],
        capture_output=True,
        text=True,
        env=cli_env.env,
        check=True,
    )
    assert "'argparse'" in done.stdout, done.stdout + done.stderr
