"""CLI fix from review RV18, finding 5: a usage error prints ``null`` on stdout only when
hcs-sandbox's own ``--json`` was given, not for a ``--json`` word of ``exec``'s guest command
(``exec NAME cmd /c echo --json``, which exec accepts without ``--``).

The tests of exec's guest words fail on the code before the fix (9b5641b); the others show
that ``null`` is still printed where it was.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from cli_support import Result

Cli = Callable[..., Result]


# ------------------------------------------------- 5: only hcs-sandbox's own --json counts


@pytest.mark.parametrize(
    "argv",
    [
        ["exec", "--timeout", "x", "a2", "cmd", "/c", "echo", "--json"],
        ["exec", "--time", "x", "a2", "cmd", "/c", "echo", "--json"],
        ["exec", "-e", "K=V", "--timeout", "x", "a2", "--json"],
        ["exec", "-eK=V", "-it", "--timeout", "x", "a2", "cmd", "--json"],
        ["exec", "-w", "C:\\", "--timeout=x", "a2", "cmd", "--json"],
        ["--state-dir", "s", "exec", "--timeout", "x", "a2", "cmd", "--jso"],
        ["exec", "--timeout", "x", "a2", "--", "cmd", "--json"],
    ],
)
def test_exec_guest_json_word_prints_no_null(cli: Cli, argv: list[str]) -> None:
    result = cli(*argv)
    assert result.code == 2
    assert "invalid seconds 'x'" in result.err
    assert result.out == ""


@pytest.mark.parametrize(
    "argv",
    [
        ["exec", "--json", "--timeout", "x", "a2", "cmd", "/c", "echo", "--json"],
        ["exec", "--timeout", "x", "--jso", "a2", "cmd"],
        ["exec", "-u", "me", "--timeout", "x", "--json", "a2", "cmd"],
        ["exec", "-w", "--json", "a2", "cmd"],  # argparse takes no value that looks like an option
        ["run", "--memory", "x", "--json", "--stop-timeout", "x"],
        ["ls", "--json", "--bogus"],
    ],
)
def test_own_json_with_a_usage_error_still_prints_null(cli: Cli, argv: list[str]) -> None:
    result = cli(*argv)
    assert result.code == 2
    assert result.out == "null\n"


def test_run_guest_json_word_after_separator_prints_no_null(cli: Cli) -> None:
    result = cli("run", "--stop-timeout", "x", "--", "cmd", "/c", "echo", "--json")
    assert result.code == 2
    assert result.out == ""
