"""Review RV7a findings 5, 6 and 9 (the last two items), through the CLI as users start it
(``python -m hcs_sandbox`` in a subprocess): stop/kill of a created sandbox, ``run -d --
COMMAND``, ``logs --json``, ``exec --json --timeout``."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from cli_support import Result

Cli = Callable[..., Result]


def _state(cli_proc: Cli, name: str) -> str:
    listed = cli_proc("ls", "-a", "--json")
    assert listed.code == 0, listed.err
    return str(next(s["state"] for s in listed.json() if s["name"] == name))


# -- finding 5: stop / kill of a created sandbox ---------------------------------------


@pytest.mark.parametrize("verb", ["stop", "kill"])
def test_stop_or_kill_of_created_keeps_it_created_and_startable(cli_proc: Cli, verb: str) -> None:
    made = cli_proc("create", "--name", "c2")
    assert made.code == 0, made.err
    done = cli_proc(verb, "c2")
    assert done.code == 0, done.err
    assert done.out.strip() == "c2"
    assert _state(cli_proc, "c2") == "created"
    started = cli_proc("start", "c2")
    assert started.code == 0, started.err
    assert _state(cli_proc, "c2") == "running"
    assert cli_proc("rm", "-f", "c2").code == 0


def test_start_of_stopped_ephemeral_names_the_cli_flag(cli_proc: Cli) -> None:
    assert cli_proc("run", "-d", "--name", "e1").code == 0
    assert cli_proc("kill", "e1").code == 0
    refused = cli_proc("start", "e1")
    assert refused.code == 1
    assert "--persistent" in refused.err
    assert cli_proc("rm", "e1").code == 0


def test_pause_of_created_says_start_it_first(cli_proc: Cli) -> None:
    assert cli_proc("create", "--name", "c3").code == 0
    refused = cli_proc("pause", "c3")
    assert refused.code == 1
    assert "hcs-sandbox start c3" in refused.err
    assert cli_proc("rm", "c3").code == 0


# -- finding 6: run -d -- COMMAND --------------------------------------------------------


def test_run_detached_with_a_command_is_refused_and_creates_nothing(cli_proc: Cli) -> None:
    refused = cli_proc("run", "-d", "--name", "dcmd", "--", "cmd", "/c", "mkdir", "C:\\marker")
    assert refused.code == 2
    assert refused.out == ""
    (line,) = refused.err_lines
    assert "-d cannot be combined with a COMMAND" in line
    assert "hcs-sandbox exec NAME -- cmd /c mkdir 'C:\\marker'" in line
    listed = cli_proc("ls", "-a", "--json")
    assert listed.json() == []


def test_run_detached_without_a_command_still_works(cli_proc: Cli) -> None:
    made = cli_proc("run", "-d", "--name", "dplain", "--")
    assert made.code == 0, made.err
    assert _state(cli_proc, "dplain") == "running"
    assert cli_proc("rm", "-f", "dplain").code == 0
