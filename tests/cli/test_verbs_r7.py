"""Review RV7a findings 5, 6 and 9 (the last two items), through the CLI as users start it
(``python -m hcs_sandbox`` in a subprocess): stop/kill of a created sandbox, ``run -d --
COMMAND``, ``logs --json``, ``exec --json --timeout``."""

from __future__ import annotations

import json
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


# -- finding 9: logs --json ----------------------------------------------------------------


def _logon_sandbox(cli: Cli, name: str) -> None:
    """A running sandbox whose logon command has written two lines and exited (run in this
    process: its logon thread must outlive ``run -d``)."""
    import time

    from hcs_sandbox.sandbox.sandbox import Sandbox

    made = cli("run", "-d", "--name", name, "--logon-command", "cmd /c echo one & echo two")
    assert made.code == 0, made.err
    deadline = time.monotonic() + 20
    while "logon command exited" not in Sandbox.get(name).logs():
        assert time.monotonic() < deadline, Sandbox.get(name).logs()
        time.sleep(0.05)


def test_logs_json_is_one_list_of_entries(cli: Cli, cli_proc: Cli) -> None:
    _logon_sandbox(cli, "lj")
    result = cli_proc("logs", "--json", "lj")
    assert result.code == 0, result.err
    got = result.json()
    assert isinstance(got, list)
    assert {"time", "source", "line", "simulated"} == set(got[0])
    assert got[0]["source"] == "lifecycle"
    assert got[0]["line"] == "created"
    assert got[0]["time"].endswith("Z")
    lifecycle = [e["line"] for e in got if e["source"] == "lifecycle"]
    assert "started" in lifecycle
    assert "logon command exited with code 0" in lifecycle
    logon = [e["line"].strip() for e in got if e["source"] == "logon"]
    assert logon == ["one", "two"]
    assert all(e["time"] is None for e in got if e["source"] == "logon")
    # The same entries as the text, line for line.
    text = cli_proc("logs", "lj").out.splitlines()
    assert len(text) == len(got) + 1  # + the separator line
    assert cli("rm", "-f", "lj").code == 0


def test_logs_follow_json_prints_one_object_per_line(cli: Cli, cli_proc: Cli) -> None:
    _logon_sandbox(cli, "lf")
    assert cli_proc("stop", "lf").code == 0
    whole = cli_proc("logs", "--json", "lf").json()
    followed = cli_proc("logs", "-f", "--json", "--interval", "0.05", "lf")
    assert followed.code == 0, followed.err
    lines = followed.out.splitlines()
    assert [json.loads(line) for line in lines] == whole
    assert whole[-1]["line"].strip() == "two"
    assert cli("rm", "lf").code == 0


def test_logs_separator_matches_the_library() -> None:
    from hcs_sandbox.cli.logs import LOGON_SEPARATOR
    from hcs_sandbox.sandbox import logon

    assert logon._SEPARATOR == LOGON_SEPARATOR + "\n"


# -- finding 9: exec --json --timeout --------------------------------------------------------


def test_exec_json_timeout_prints_the_collected_output(cli_proc: Cli) -> None:
    assert cli_proc("run", "-d", "--name", "web").code == 0
    result = cli_proc("exec", "--json", "--timeout", "1", "web", "--", "ping", "-n", "5", "x")
    assert result.code == 124
    got = result.json()  # exactly one JSON document on stdout
    assert got["timed_out"] is True
    assert got["killed"] is True
    assert got["exit_code"] is None
    assert got["timeout"] == 1.0
    assert got["command_line"] == "ping -n 5 x"
    assert "Reply from x" in got["stdout"]
    (line,) = result.err_lines
    assert "did not finish within 1 s" in line
    done = cli_proc("exec", "--json", "web", "--", "cmd", "/c", "echo hi")
    assert done.code == 0
    assert done.json()["timed_out"] is False
    assert cli_proc("rm", "-f", "web").code == 0
