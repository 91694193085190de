"""The CLI when a file is still held open under Windows rules (review RV31 F1, F3, F4):
``rm -f``, ``run --rm [--json]``, ``prune``, ``doctor --report``.  The rules are emulated by
``tests/winhold.py`` (no real sleeping); the CLI runs in this process."""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from cli_support import CliEnv, Result

from hcs_sandbox.sandbox import storage
from winhold import Hold

Cli = Callable[..., Result]
DISKS = ("sandbox.vhdx", "sandbox.vmgs")


def _states(cli: Cli) -> dict[str, str]:
    result = cli("ls", "-a", "--json")
    assert result.code == 0, result.err
    return {item["name"]: item["state"] for item in result.json()}


def _as_if_exited(cli_env: CliEnv) -> None:
    """Every record's remover is gone, as after its CLI process exited."""
    from hcs_sandbox.sandbox.store import open_store

    with open_store(cli_env.state) as store:
        for record in store.list(all=True, kind=None):
            store.update(record.id, owner_pid=0)


def _sandbox_files(cli_env: CliEnv) -> list[str]:
    root = cli_env.state / "sandboxes"
    return sorted(p.name for p in root.rglob("*")) if root.exists() else []


def test_rm_f_right_after_the_exit_waits_out_a_short_hold(
    cli: Cli, cli_env: CliEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("run", "-d", "--name", "r1").code == 0
    hold = Hold(monkeypatch, DISKS, 2.0)
    result = cli("rm", "-f", "r1")
    assert result.code == 0, result.err
    assert result.err_lines == []
    assert hold.refused
    assert _states(cli) == {}
    assert _sandbox_files(cli_env) == []


def test_rm_f_with_a_longer_hold_is_one_true_error_and_prune_finishes(
    cli: Cli, cli_env: CliEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("run", "-d", "--name", "r2").code == 0
    hold = Hold(monkeypatch, DISKS, None)
    result = cli("rm", "-f", "r2")
    assert result.code == 1
    (line,) = result.err_lines
    assert line.startswith("hcs-sandbox: error: removing sandbox 'r2' stopped half way")
    assert "sandbox.vmgs" in line
    assert "antivirus" in line
    assert "'hcs-sandbox prune'" in line
    assert "running VM" not in line
    # 10 s for the whole sandbox, not per file: the VMGS is waited for, then the VHDX
    # (held by the same process) is tried once.
    assert sum(hold.sleeps) == pytest.approx(storage.HELD_RETRY_SECONDS)
    assert hold.refused.count("sandbox.vhdx") == 1
    assert _states(cli) == {"r2": "removing"}
    hold.release()
    _as_if_exited(cli_env)
    pruned = cli("prune")
    assert pruned.code == 0, pruned.err
    assert _states(cli) == {}
    assert _sandbox_files(cli_env) == []


def test_prune_prints_one_line_per_held_file(
    cli: Cli, cli_env: CliEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """F4: one held VHDX: one line (not the file and its folder, each as a warning and an
    error line), and no "run 'hcs-sandbox prune'" inside prune's own output."""
    assert cli("run", "-d", "--name", "p1").code == 0
    hold = Hold(monkeypatch, ["sandbox.vhdx"], None)
    assert cli("rm", "-f", "p1").code == 1
    _as_if_exited(cli_env)
    result = cli("prune")
    assert result.code == 1
    (line,) = result.err_lines
    assert line.startswith("hcs-sandbox: error: p1 (")
    assert "sandbox.vhdx" in line
    assert "prune again once it is closed" in line
    assert "'hcs-sandbox prune'" not in line
    hold.release()
    assert cli("prune").code == 0
    assert _states(cli) == {}


def test_run_rm_json_says_whether_it_was_removed(
    cli: Cli, cli_env: CliEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = cli("run", "--rm", "--json", "--name", "j1", "--", "cmd", "/c", "echo", "hi")
    assert result.code == 0, result.err
    assert result.json()["removed"] is True
    assert "remove_error" not in result.json()

    hold = Hold(monkeypatch, ["sandbox.vhdx"], None)
    result = cli("run", "--rm", "--json", "--name", "j2", "--", "cmd", "/c", "echo", "hi")
    out = result.json()
    assert out["exit_code"] == 0
    assert out["removed"] is False
    assert "sandbox.vhdx" in out["remove_error"]
    assert "stopped half way" in out["remove_error"]
    # A clean run whose sandbox could not be removed: exit 1, with its error line.
    assert result.code == 1
    (line,) = result.err_lines
    assert line.startswith("hcs-sandbox: error: removing failed: removing sandbox 'j2'")
    assert _states(cli)["j2"] == "removing"
    hold.release()
    _as_if_exited(cli_env)
    assert cli("prune").code == 0


def test_run_rm_keeps_a_failed_commands_exit_code(
    cli: Cli, cli_env: CliEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    hold = Hold(monkeypatch, ["sandbox.vhdx"], None)
    result = cli("run", "--rm", "--name", "j3", "--", "cmd", "/c", "exit", "3")
    assert result.code == 3
    (line,) = [line for line in result.err_lines if "removing failed" in line]
    assert line.startswith("warning: removing failed: removing sandbox 'j3'")
    hold.release()
    _as_if_exited(cli_env)
    assert cli("prune").code == 0


def test_run_rm_without_json_is_unchanged_when_removed(cli: Cli) -> None:
    result = cli("run", "--rm", "--name", "j4", "--", "cmd", "/c", "echo", "hi")
    assert result.code == 0, result.err
    assert result.out.strip() == "hi"
    assert _states(cli) == {}


def test_doctor_report_onto_a_file_held_open_keeps_the_new_report(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """F3: the replace is retried; when the file stays open the written report is kept
    under a visible name beside it (owner-only), and the message says where."""
    folder = tmp_path / "out"
    folder.mkdir()
    target = folder / "report.json"
    target.write_text("old\n")
    hold = Hold(monkeypatch, ["report.json"], None)
    result = cli("doctor", "--report", str(target))
    assert result.code == 1
    line = result.err_lines[-1]
    assert line.startswith(f"hcs-sandbox: error: could not replace {target} with the new")
    kept = folder / "report.new.json"
    assert f"the new report is in {kept}" in line
    assert "choose a writable path" not in line
    assert "close the program that has" in line
    assert target.read_text() == "old\n"
    assert json.loads(kept.read_text())["checks"]
    if sys.platform != "win32":
        assert stat.S_IMODE(os.stat(kept).st_mode) == 0o600
    assert sorted(p.name for p in folder.iterdir()) == ["report.json", "report.new.json"]
    assert sum(hold.sleeps) == pytest.approx(storage.HELD_RETRY_SECONDS)

    # Again: report.new.json is taken, never replaced.
    result = cli("doctor", "--report", str(target))
    assert result.code == 1
    assert f"the new report is in {folder / 'report.new-2.json'}" in result.err_lines[-1]
    assert json.loads(kept.read_text())["checks"]


def test_doctor_report_onto_a_file_held_a_moment_is_replaced(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    target = folder / "report.json"
    target.write_text("old\n")
    hold = Hold(monkeypatch, ["report.json"], 1.0)
    result = cli("doctor", "--report", str(target))
    assert result.code in (0, 1), result.err
    assert "could not" not in result.err
    assert hold.refused
    assert json.loads(target.read_text())["checks"]
    assert sorted(p.name for p in folder.iterdir()) == ["report.json"]


def test_ctrl_c_while_run_rm_json_removes_still_prints_the_result(
    cli: Cli, cli_env: CliEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review RV34 #4: the command ended; Ctrl+C in the removal's pause: the result is still
    printed, saying the sandbox was not removed (it printed 'null' before), and the exit
    is the interrupt's."""
    from hcs_sandbox.cli.run import INTERRUPTED_REMOVAL

    def interrupt(seconds: float) -> None:
        raise KeyboardInterrupt

    Hold(monkeypatch, ["sandbox.vhdx"], None, on_sleep=interrupt)
    result = cli("run", "--rm", "--json", "--name", "j9", "--", "cmd", "/c", "echo", "hi")
    assert result.code == 130, result.err
    out = result.json()
    assert out["exit_code"] == 0
    assert out["removed"] is False
    assert out["remove_error"] == INTERRUPTED_REMOVAL
