"""CLI defects found by review RV7a: huge timeouts, Ctrl+D at prune's prompt, ``ls -q
--json``, a state filter no record can match, the logon command's isolation note."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from cli_support import CliEnv, Result, cli_command

from hcs_sandbox.hcs import operation

Cli = Callable[..., Result]


def test_timeout_ms_of_a_huge_or_infinite_timeout_is_the_longest_finite_wait() -> None:
    for timeout in (1e308, float("inf"), 4_294_967.3, 1e12):
        assert operation.timeout_ms(timeout) == 0xFFFFFFFE


def test_stop_and_wait_take_a_huge_timeout(cli: Cli) -> None:
    assert cli("run", "-d", "--name", "big").code == 0
    stopped = cli("stop", "-t", "1e308", "big")
    assert stopped.code == 0, stopped.err
    assert "internal error" not in stopped.err
    assert cli("inspect", "big", "--json").out.count('"stopped"') >= 1
    waited = cli("wait", "--timeout", "1e12", "big")
    assert waited.code == 0, waited.err
    assert "internal error" not in waited.err


def test_ctrl_d_at_prunes_prompt_is_no(cli_env: CliEnv) -> None:
    # A record to prune: a sandbox whose system is gone (its process left it).
    from hcs_sandbox.sandbox.store import open_store

    with open_store(cli_env.state) as store:
        store.reserve("half", state="creating", owner_pid=2**22 + 12345)
    script = (
        "import os, pty, sys; "
        "pid, fd = pty.fork()\n"
        f"if pid == 0:\n    os.execv(sys.executable, {[*cli_command(), 'prune']!r})\n"
        "out = b''\n"
        "while b'[y/N]' not in out:\n    out += os.read(fd, 1024)\n"
        "os.write(fd, b'\\x04')\n"
        "while True:\n"
        "    try:\n        chunk = os.read(fd, 1024)\n    except OSError:\n        break\n"
        "    if not chunk:\n        break\n    out += chunk\n"
        "_, status = os.waitpid(pid, 0)\n"
        "sys.stdout.write(out.decode(errors='replace'))\n"
        "sys.exit(os.waitstatus_to_exitcode(status))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=cli_env.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "nothing removed" in done.stdout
    assert "internal error" not in done.stdout
    with open_store(cli_env.state) as store:
        assert [r.name for r in store.list(all=True)] == ["half"]


def test_ls_quiet_json_prints_the_ids_as_json(cli: Cli) -> None:
    assert cli("create", "--name", "one").code == 0
    result = cli("ls", "-aq", "--json", "--no-trunc")
    assert result.code == 0
    ids = json.loads(result.out)
    assert ids == [json.loads(cli("ls", "-a", "--json").out)[0]["id"]]


@pytest.mark.parametrize("state", ["bogus", "runing"])
def test_ls_filter_on_a_state_no_record_can_have_is_a_bad_filter(cli: Cli, state: str) -> None:
    result = cli("ls", "-a", "--filter", f"state={state}")
    assert result.code == 2
    assert len(result.err_lines) == 1
    assert "invalid --filter" in result.err
    assert cli("ls", "-a", "--filter", "state=Running").code == 0  # any case, as before


def test_ls_state_filter_matches_the_word_it_checked(cli: Cli) -> None:
    assert cli("create", "--name", "one").code == 0
    for text in ("state=created", "state=Created ", "state= created"):
        result = cli("ls", "-aq", "--filter", text)
        assert result.code == 0
        assert len(result.out.split()) == 1, text


def test_logon_command_help_says_it_loosens_isolation(cli: Cli) -> None:
    for verb in ("run", "create"):
        text = " ".join(cli(verb, "--help").out.split())  # argparse wraps the lines
        logon = text[text.index("--logon-command CMD a command") :]  # the option, not usage
        logon = logon[: logon.index(" --", 3)]  # up to the next option
        assert "LOOSENS ISOLATION" in logon, logon


def test_prune_does_not_say_nothing_to_prune_when_something_failed(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review RV9b: a failure alone (e.g. an interrupted restart's system that could not
    be terminated) printed 'nothing to prune' beside the error."""
    from hcs_sandbox.sandbox import maintenance

    def failing(*, dry_run: bool = False, progress: object = None) -> maintenance.PruneReport:
        return maintenance.PruneReport(dry_run=dry_run, failures=["p (id): access denied"])

    monkeypatch.setattr(maintenance, "prune", failing)
    result = cli("prune", "-f")
    assert result.code == 1
    assert "nothing to prune" not in result.out
    assert "access denied" in result.err


def _to_full_disk(cli_env: CliEnv, *argv: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI with its stdout on /dev/full (every write fails with ENOSPC)."""
    import os

    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    with open("/dev/full", "w") as full:
        return subprocess.run(
            [*cli_command(), *argv],
            env=cli_env.env,
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )


def _cli_ok(cli_env: CliEnv, *argv: str) -> None:
    done = subprocess.run([*cli_command(), *argv], env=cli_env.env, check=False)
    assert done.returncode == 0


def test_output_to_a_full_disk_is_one_error_not_a_bug(cli_env: CliEnv) -> None:
    """Review RV7a: 'ls --json >/dev/full' was reported as an internal error (a bug)."""
    _cli_ok(cli_env, "create", "--name", "one")
    done = _to_full_disk(cli_env, "ls", "-a", "--json")
    assert done.returncode == 1
    lines = [ln for ln in done.stderr.splitlines() if not ln.startswith("note: simulated")]
    assert lines == ["hcs-sandbox: error: cannot write the output: No space left on device"]


@pytest.mark.parametrize(
    "argv",
    [
        ["exec", "e1", "--", "cmd", "/c", "echo", "hi"],
        ["run", "--rm", "--", "cmd", "/c", "echo", "hi"],
    ],
)
def test_guest_output_to_a_full_disk_is_one_error_not_a_bug(
    cli_env: CliEnv, argv: list[str]
) -> None:
    """Review RV10: exec and run write the guest's bytes through sys.stdout.buffer."""
    _cli_ok(cli_env, "run", "-d", "--name", "e1")
    try:
        done = _to_full_disk(cli_env, *argv)
        assert done.returncode == 1
        assert "internal error" not in done.stderr
        assert "cannot write the output: No space left on device" in done.stderr
    finally:
        subprocess.run([*cli_command(), "rm", "-f", "e1"], env=cli_env.env, check=False)


def test_main_in_process_keeps_a_callers_stdout_that_returns_none(
    monkeypatch: pytest.MonkeyPatch, cli_env: CliEnv
) -> None:
    """Review RV10: an embedding's own stdout (a tee whose write returns None), or none at
    all (pythonw), works as before; and sys.stdout is the caller's again afterwards."""
    from hcs_sandbox.cli.main import main

    class Tee:
        def __init__(self) -> None:
            self.parts: list[str] = []

        def write(self, text: str) -> None:
            self.parts.append(text)

        def flush(self) -> None:
            pass

    tee = Tee()
    monkeypatch.setattr(sys, "stdout", tee)
    assert main(["ls", "-a", "--json"]) == 0
    assert sys.stdout is tee
    assert "".join(tee.parts).strip() == "[]"
    monkeypatch.setattr(sys, "stdout", None)
    assert main(["ls", "-a", "-q"]) == 0
    assert sys.stdout is None


def test_run_persistent_command_stops_the_sandbox_when_the_output_fails(
    cli_env: CliEnv,
) -> None:
    """Review RV11: 'run --persistent -- COMMAND' stopped the sandbox only on success."""
    done = _to_full_disk(
        cli_env, "run", "--persistent", "--name", "p1", "--", "cmd", "/c", "echo", "hi"
    )
    assert done.returncode == 1
    shown = subprocess.run(
        [*cli_command(), "ls", "-a", "--json"],
        env=cli_env.env,
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        assert [(s["name"], s["state"]) for s in json.loads(shown.stdout)] == [("p1", "stopped")]
    finally:
        subprocess.run([*cli_command(), "rm", "-f", "p1"], env=cli_env.env, check=False)


def test_logs_follow_json_prints_each_lifecycle_entry_once() -> None:
    """Review RV12: '-f --json' printed what lay past a count, but the guest's 'finished'
    note sits after the stored lines and goes away again: a later 'stopped' was lost and
    the note printed twice."""
    from hcs_sandbox.cli.logs import new_entries

    def e(time: str | None, line: str) -> dict[str, Any]:
        return {"time": time, "source": "lifecycle", "line": line}

    note = e(None, "logon command finished with exit code 0 (seen by the guest)")
    seen: dict[tuple[Any, str], int] = {}
    first = [e("t1", "created"), e("t2", "started"), note]
    assert new_entries(first, seen) == first
    later = [e("t1", "created"), e("t2", "started"), e("t3", "stopped"), note]
    assert new_entries(later, seen) == [e("t3", "stopped")]
    without_note = [e("t1", "created"), e("t2", "started"), e("t3", "stopped")]
    assert new_entries(without_note, seen) == []
    assert new_entries(later, seen) == []  # the note back: printed once only
