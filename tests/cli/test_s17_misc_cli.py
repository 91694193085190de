"""Session 17 (QA s17): an empty --state-dir, read-only verbs that make no state directory,
exec when the sandbox dies under it, and what a Ctrl+C leaves behind."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cli_support import CliEnv, Result, cli_command

# -- an empty --state-dir (tester F7) ---------------------------------------------------


@pytest.mark.parametrize("value", ["", "  "])
@pytest.mark.parametrize("where", ["before", "after"])
def test_an_empty_state_dir_flag_is_bad_input(
    cli: Callable[..., Result], cli_env: CliEnv, value: str, where: str
) -> None:
    made = cli("create", "--name", "real")  # in HCS_SANDBOX_STATE_DIR: what must stay
    assert made.code == 0, made.err
    argv = ["--state-dir", value, "rm", "-f", "real"]
    if where == "after":
        argv = ["rm", "-f", "real", "--state-dir", value]
    done = cli(*argv)
    assert done.code == 2
    assert len(done.err_lines) == 1, done.err
    assert "--state-dir" in done.err_lines[0]
    assert "empty" in done.err_lines[0]
    listed = cli("ls", "-a", "-q")
    assert listed.code == 0
    assert listed.out.strip(), "the sandbox in the real state directory was removed"


def test_an_empty_state_dir_flag_with_json_prints_null(cli: Callable[..., Result]) -> None:
    done = cli("--state-dir", "", "ls", "--json")
    assert done.code == 2
    assert done.out.strip() == "null"


def test_an_empty_state_dir_variable_is_unset(
    cli: Callable[..., Result], cli_env: CliEnv, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """As an empty HCS_SANDBOX_SIMULATOR is "not asked for" (docs/simulator.md), an empty
    HCS_SANDBOX_STATE_DIR is unset: the default applies."""
    home = tmp_path / "home"
    monkeypatch.setenv("XDG_STATE_HOME", str(home))
    monkeypatch.setenv("HCS_SANDBOX_STATE_DIR", "")
    done = cli("create", "--name", "dflt")
    assert done.code == 0, done.err
    assert (home / "hcs-sandbox" / "state.db").is_file()


# -- read-only verbs make no state directory (agent F8) ---------------------------------


@pytest.mark.parametrize(
    "argv",
    [["ls"], ["ls", "-a", "--json"], ["ls", "-q"], ["prune"], ["prune", "--dry-run", "--json"]],
    ids=" ".join,
)
def test_read_only_verbs_make_no_state_dir(
    cli: Callable[..., Result], cli_env: CliEnv, tmp_path: Path, argv: list[str]
) -> None:
    missing = tmp_path / "typo"
    done = cli("--state-dir", str(missing), *argv)
    assert done.code == 0, done.err
    assert done.err_lines == []
    assert not missing.exists()


def test_a_verb_on_a_name_in_a_missing_state_dir_says_so(
    cli: Callable[..., Result], cli_env: CliEnv, tmp_path: Path
) -> None:
    missing = tmp_path / "typo"
    for verb in (["inspect"], ["rm", "-f"], ["stop"], ["logs"]):
        done = cli("--state-dir", str(missing), *verb, "web")
        assert done.code == 2, done.err
        assert len(done.err_lines) == 1, done.err
        assert f"the state directory {missing} does not exist" in done.err_lines[0]
    assert not missing.exists()


@pytest.mark.parametrize("argv", [["ls"], ["prune"], ["inspect", "web"]], ids=" ".join)
def test_a_state_dir_that_cannot_be_reached_fails_as_before(
    cli: Callable[..., Result],
    cli_env: CliEnv,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
) -> None:
    """lstat/stat of an existing state directory fail with EACCES (a parent the user may not
    search): the permission error, never "nothing" or "does not exist" (review RV-misc R1)."""
    state = tmp_path / "locked" / "state"
    state.mkdir(parents=True, mode=0o700)
    for name in ("lstat", "stat"):
        real = getattr(os, name)

        def denied(p: Any, *args: Any, _real: Any = real, **kwargs: Any) -> Any:
            if os.fspath(p) == str(state):
                raise PermissionError(13, "Permission denied", str(state))
            return _real(p, *args, **kwargs)

        monkeypatch.setattr(os, name, denied)
    done = cli("--state-dir", str(state), *argv)
    assert done.code == 1, done.err
    assert len(done.err_lines) == 1, done.err
    assert "Permission denied" in done.err_lines[0]
    assert "does not exist" not in done.err_lines[0]


def test_ls_in_a_missing_relative_state_dir_makes_nothing(cli_env: CliEnv, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    done = subprocess.run(
        [*cli_command(), "ls"],
        cwd=work,
        env={**cli_env.env, "HCS_SANDBOX_STATE_DIR": "relstate"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert os.listdir(work) == []


# -- what a Ctrl+C leaves, on the "interrupted" line (tester F6) --------------------------


def _interrupt_release(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The removal's release step raises KeyboardInterrupt (once): the record is then
    ``removing``, as a Ctrl+C during ``rm`` leaves it."""
    from hcs_sandbox.sandbox import sandbox as sandbox_module

    fired: list[str] = []
    real = sandbox_module.release_resources

    def release(*args: object, **kwargs: object) -> object:
        if not fired:
            fired.append("release")
            raise KeyboardInterrupt
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(sandbox_module, "release_resources", release)
    return fired


def test_ctrl_c_during_rm_says_it_is_left_removing(
    cli: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("create", "--name", "r1").code == 0
    assert cli("create", "--name", "r2").code == 0
    fired = _interrupt_release(monkeypatch)
    done = cli("rm", "r1", "r2")
    assert fired == ["release"]
    assert done.code == 130
    assert done.err_lines == [
        "hcs-sandbox: interrupted; sandbox 'r1' is left 'removing': finish it with "
        "'hcs-sandbox rm -f r1' or 'hcs-sandbox prune'"
    ]
    states = {s["name"]: s["state"] for s in cli("ls", "-a", "--json").json()}
    assert states == {"r1": "removing", "r2": "created"}
    assert cli("rm", "-f", "r1", "r2").code == 0  # what the line says to do works


def test_ctrl_c_before_rm_marked_anything_says_it_was_not_removed(
    cli: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    from hcs_sandbox.sandbox.sandbox import Sandbox

    assert cli("run", "-d", "--name", "r4").code == 0
    real = Sandbox.remove

    def remove(self: Sandbox, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(Sandbox, "remove", remove)
    done = cli("rm", "-f", "r4")
    assert done.code == 130
    assert done.err_lines == [
        "hcs-sandbox: interrupted; sandbox 'r4' was not removed (it is running): remove it "
        "with 'hcs-sandbox rm -f r4'"
    ]
    monkeypatch.setattr(Sandbox, "remove", real)
    assert cli("rm", "-f", "r4").code == 0


@pytest.mark.parametrize("persistent", [False, True], ids=["ephemeral", "persistent"])
def test_ctrl_c_as_run_d_starts_says_what_is_left(
    cli: Callable[..., Result], monkeypatch: pytest.MonkeyPatch, persistent: bool
) -> None:
    from hcs_sandbox.sandbox.sandbox import Sandbox

    real = Sandbox.start

    def start(self: Sandbox, **kwargs: object) -> None:
        real(self, **kwargs)  # type: ignore[arg-type]
        raise KeyboardInterrupt  # as start returns

    monkeypatch.setattr(Sandbox, "start", start)
    extra = ["--persistent"] if persistent else []
    done = cli("run", "-d", "--name", "r3", *extra)
    assert done.code == 130
    # A persistent host-base sandbox's create also prints the planner's note about it
    # (warnings at create/run, s17-warn): the lines after the warnings are the ones checked.
    lines = [line for line in done.err_lines if not line.startswith("warning: ")]
    assert len(done.err_lines) - len(lines) == (1 if persistent else 0)
    assert lines[0] == "hcs-sandbox: stopping the sandbox"
    if persistent:
        left = (
            "sandbox 'r3' is left stopped: start it with 'hcs-sandbox start r3' or remove it "
            "with 'hcs-sandbox rm r3'"
        )
    else:
        left = (
            "sandbox 'r3' is left stopped: remove it with 'hcs-sandbox rm r3' or "
            "'hcs-sandbox prune'"
        )
    assert lines[1:] == [f"hcs-sandbox: interrupted; {left}"]
    assert [s["state"] for s in cli("ls", "-a", "--json").json()] == ["stopped"]
    monkeypatch.setattr(Sandbox, "start", real)
    assert cli("rm", "r3").code == 0


def test_ctrl_c_during_run_rm_removal_says_it_is_left_removing(
    cli: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    fired = _interrupt_release(monkeypatch)
    done = cli("run", "--rm", "--name", "r5", "--", "cmd", "/c", "echo", "hi")
    assert fired == ["release"]
    assert done.code == 130
    assert done.err_lines[-1] == (
        "hcs-sandbox: interrupted; sandbox 'r5' is left 'removing': finish it with "
        "'hcs-sandbox rm -f r5' or 'hcs-sandbox prune'"
    )
    assert cli("rm", "-f", "r5").code == 0


# -- exec when the sandbox stops under the command (tester F5) ---------------------------


def _kill_later(name: str, seconds: float = 0.5) -> threading.Thread:
    from hcs_sandbox.sandbox.sandbox import Sandbox

    def run() -> None:
        time.sleep(seconds)
        with Sandbox.get(name) as sb:
            sb.kill()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("json_output", [False, True], ids=["text", "json"])
def test_exec_says_the_sandbox_stopped_and_exits_125(
    cli: Callable[..., Result], web: str, json_output: bool
) -> None:
    killer = _kill_later(web)
    flags = ["--json"] if json_output else []
    done = cli("exec", *flags, web, "--", "cmd", "/c", "ping", "-n", "30", "127.0.0.1")
    killer.join()
    assert done.code == 125
    assert len(done.err_lines) == 1, done.err
    assert done.err_lines[0].startswith(
        "hcs-sandbox: error: sandbox 'web' stopped while the command "
        "'cmd /c ping -n 30 127.0.0.1' ran"
    )
    if json_output:
        obj = done.json()
        assert obj["exit_code"] is None
        assert obj["sandbox_exited"] is True
        assert obj["timed_out"] is False
        assert "Pinging 127.0.0.1" in obj["stdout"]
    else:
        assert "Pinging 127.0.0.1" in done.out
    assert cli("rm", "-f", web).code == 0


def test_exec_of_a_failing_command_keeps_its_code(cli: Callable[..., Result], web: str) -> None:
    done = cli("exec", web, "--", "cmd", "/c", "exit", "7")
    assert done.code == 7
    assert done.err_lines == []
    assert cli("rm", "-f", web).code == 0
