"""``run -d --logon-command``, as users run it (``python -m hcs_sandbox`` in a new process
that exits right after printing the id): the logon command runs, its output and its end
reach ``logs`` in another process (docs/exec.md, "The logon command and logs")."""

from __future__ import annotations

from collections.abc import Callable

from cli_support import CliEnv, Result

Cli = Callable[..., Result]
SEPARATOR = "---- logon command output ----\n"


LOOSENS = "warning: a logon command is set: until it ends, the guest can write to one host"


def _other_lines(result: Result) -> list[str]:
    """The stderr lines but the planner's warning that a logon command loosens isolation
    (printed once by every run with one, session 17)."""
    lines = result.err_lines
    assert sum(line.startswith(LOOSENS) for line in lines) == 1, lines
    return [line for line in lines if not line.startswith(LOOSENS)]


def _logon_output(text: str) -> list[str]:
    assert SEPARATOR in text, text
    return text.split(SEPARATOR, 1)[1].split()


def test_run_detached_runs_the_logon_command(cli_proc: Cli, cli_env: CliEnv) -> None:
    started = cli_proc("run", "-d", "--name", "g", "--logon-command", "cmd /c echo hi")
    assert started.code == 0, started.err
    assert _other_lines(started) == []  # no other warning: the command was started
    try:
        logs = cli_proc("logs", "g")
        assert logs.code == 0, logs.err
        assert "logon command started: cmd /c echo hi" in logs.out
        # The end: seen by the starter before it exited, or by the guest (its marker).
        assert (
            "logon command finished with exit code 0 (seen by the guest)" in logs.out
            or "logon command exited with code 0" in logs.out
        ), logs.out
        assert _logon_output(logs.out) == ["hi"]
        sandboxes = cli_env.state / "sandboxes"
        (folder,) = sandboxes.iterdir()
        assert (folder / "logs" / "guest" / "logon.done").is_file()  # the guest's marker
    finally:
        cli_proc("rm", "-f", "g")


def test_run_detached_json_after_the_logon_command_started(cli_proc: Cli) -> None:
    started = cli_proc("run", "-d", "--json", "--name", "j", "--logon-command", "cmd /c echo j")
    assert started.code == 0, started.err
    assert started.json()["name"] == "j"
    try:
        assert _logon_output(cli_proc("logs", "j").out) == ["j"]
    finally:
        cli_proc("rm", "-f", "j")


def test_run_detached_warns_when_the_logon_command_cannot_start(cli_proc: Cli) -> None:
    # The guest refuses the process (E_ACCESSDENIED, not a connection error: no retries).
    faults = {"HCS_SANDBOX_SIM_FAULTS": "HcsCreateProcess:1:0x80070005:100"}
    started = cli_proc(
        "run", "-d", "--name", "w", "--logon-command", "cmd /c echo x", extra_env=faults
    )
    try:
        assert started.code == 0, started.err  # the sandbox itself runs
        assert len(started.out.split()) == 1  # its id, as always
        (warning,) = _other_lines(started)
        assert warning.startswith("warning: the logon command was not started (")
        assert "the sandbox runs without it (see 'hcs-sandbox logs w')" in warning
        logs = cli_proc("logs", "w")
        assert "logon command not started" in logs.out
        assert "logon command started" not in logs.out
    finally:
        cli_proc("rm", "-f", "w")


def test_run_detached_leaves_a_long_logon_command_running(cli_proc: Cli) -> None:
    """The CLI exits while the command runs: it lets the command go (its handle closes, it
    is not ended, no warning about an unclosed handle, nothing written to the log about
    it), and what the command wrote so far is in ``logs``."""
    started = cli_proc(
        "run", "-d", "--name", "long", "--logon-command", "cmd /c echo early & timeout /t -1"
    )
    assert started.code == 0, started.err
    assert _other_lines(started) == []
    try:
        logs = cli_proc("logs", "long")
        assert "logon command started" in logs.out
        for line in ("exited", "stopped waiting", "ended early", "not started"):
            assert f"logon command {line}" not in logs.out
            assert f"logon command: {line}" not in logs.out
        assert _logon_output(logs.out)[0] == "early"
    finally:
        cli_proc("rm", "-f", "long")


def test_start_warns_like_run_when_the_logon_command_cannot_start(cli_proc: Cli) -> None:
    assert cli_proc("create", "--name", "s", "--logon-command", "cmd /c echo x").code == 0
    faults = {"HCS_SANDBOX_SIM_FAULTS": "HcsCreateProcess:1:0x80070005:100"}
    try:
        started = cli_proc("start", "s", extra_env=faults)
        assert started.code == 0, started.err
        (warning,) = started.err_lines
        assert warning.startswith("warning: the logon command was not started (")
    finally:
        cli_proc("rm", "-f", "s")


def test_run_detached_warns_when_the_output_is_captured_only_while_it_runs(
    cli_proc: Cli,
) -> None:
    """Review RV12: when the log folder cannot be shared, the output goes through pipes,
    so only while the starting process lives: 'run -d' (which exits at once) says so."""
    faults = {"HCS_SANDBOX_SIM_FAULTS": "HcsModifyComputeSystem:1:0x80070005"}
    started = cli_proc(
        "run", "-d", "--name", "pf", "--logon-command", "cmd /c echo a", extra_env=faults
    )
    try:
        assert started.code == 0, started.err
        (warning,) = _other_lines(started)
        assert warning.startswith("warning: the logon command runs, but its output is captured")
        assert "only while this process runs" in warning
    finally:
        cli_proc("rm", "-f", "pf")
