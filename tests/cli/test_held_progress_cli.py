"""``rm`` and ``prune`` say on a terminal that they wait for a file another process still
holds open ("waiting for sandbox.vmgs, held open by another process (0 s of 10 s): ..."), on
the progress line ``create`` uses; nothing when stderr is piped or nothing is held.  The
Windows rules are emulated by ``tests/winhold.py`` (no real sleeping); the CLI runs in this
process."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from cli_support import CliEnv, Result

from winhold import Hold

Cli = Callable[..., Result]
DISKS = ("sandbox.vhdx", "sandbox.vmgs")


class _Terminal(io.StringIO):
    """stderr as a terminal (its width unknown: the progress line is cut at 79)."""

    def isatty(self) -> bool:
        return True


#: What every verb prints last on stderr with the simulator (``notice_if_simulated``).
NOTICE = "note: simulated: this ran against the built-in HCS simulator, not Windows\n"


def _on_a_terminal(*argv: str) -> tuple[int, str]:
    """``main(argv)`` with stderr a terminal: the exit code and what stderr got before the
    simulator's notice."""
    from hcs_sandbox.cli.main import main

    terminal = _Terminal()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "stderr", terminal)
        code = main(list(argv))
    err = terminal.getvalue()
    assert err.endswith(NOTICE)
    return code, err[: -len(NOTICE)]


def _as_if_exited(cli_env: CliEnv) -> None:
    from hcs_sandbox.sandbox.store import open_store

    with open_store(cli_env.state) as store:
        for record in store.list(all=True, kind=None):
            store.update(record.id, owner_pid=0)


def _lines(err: str) -> list[str]:
    """The texts the progress line showed, without its ``[  0.00s] `` time."""
    return [part[10:].rstrip() for part in err.split("\r") if part.strip()]


def test_rm_on_a_terminal_says_what_it_waits_for(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    assert cli("run", "-d", "--name", "t1").code == 0
    hold = Hold(monkeypatch, DISKS, 2.0)
    code, err = _on_a_terminal("rm", "-f", "t1")
    assert code == 0, err
    shown = _lines(err)
    assert len(shown) == len(hold.sleeps) == 6
    assert shown[0].startswith(
        "waiting for sandbox.vmgs, held open by another process (0 s of 10 s)"
    )
    assert "(1 s of 10 s)" in shown[-1]
    assert all(len(line) + 10 <= 79 for line in shown)  # cut to the terminal's width
    assert err.endswith("\r")  # the line is blanked at the end
    assert err.split("\r")[-2].strip() == ""


def test_rm_piped_or_with_nothing_held_says_nothing_more(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("run", "-d", "--name", "t2").code == 0
    assert cli("run", "-d", "--name", "t3").code == 0
    code, err = _on_a_terminal("rm", "-f", "t2")  # a terminal, nothing held
    assert (code, err) == (0, "")
    hold = Hold(monkeypatch, DISKS, 2.0)
    result = cli("rm", "-f", "t3")  # held, stderr piped (captured)
    assert result.code == 0, result.err
    assert hold.sleeps
    assert result.err == NOTICE
    assert result.out.split() == ["t3"]


def test_rm_that_waits_in_vain_clears_the_line_before_its_error(
    cli: Cli, cli_env: CliEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("run", "-d", "--name", "t4").code == 0
    hold = Hold(monkeypatch, DISKS, None)
    code, err = _on_a_terminal("rm", "-f", "t4")
    assert code == 1
    progress, error = err.rsplit("\r", 1)
    assert "(9 s of 10 s)" in progress
    assert error.startswith("hcs-sandbox: error: removing sandbox 't4' stopped half way")
    hold.release()
    _as_if_exited(cli_env)
    assert cli("prune").code == 0


def test_prune_on_a_terminal_says_what_it_waits_for(
    cli: Cli, cli_env: CliEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    orphan = Path(cli_env.state) / "sandboxes" / "00000000-0000-4000-8000-000000000001"
    orphan.mkdir(parents=True)
    (orphan / "a.bin").write_bytes(b"x")
    hold = Hold(monkeypatch, ["a.bin"], 0.3)
    result = cli("prune", "-f")  # piped: nothing more than before
    assert result.code == 0, result.err
    assert result.err == NOTICE
    assert hold.sleeps == pytest.approx([0.05, 0.1, 0.2])
    orphan.mkdir()
    (orphan / "a.bin").write_bytes(b"x")
    hold = Hold(monkeypatch, ["a.bin"], 0.3)
    code, err = _on_a_terminal("prune", "-f")
    assert code == 0, err
    shown = _lines(err)
    assert len(shown) == 3
    for line in shown:
        assert line.startswith("waiting for a.bin, held open by another process (0 s of 10 s)")
    assert err.endswith("\r")
    code, err = _on_a_terminal("prune", "-f")  # nothing held (nor left)
    assert (code, err) == (0, "")


def test_run_rm_on_a_terminal_says_what_its_removal_waits_for(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review RV59 F1: ``run --rm``'s removal (right after the VM worker exited, on Windows
    the likeliest moment for a held file) shows its wait as ``rm`` does."""
    hold = Hold(monkeypatch, ("sandbox.vmgs",), 0.1)
    code, err = _on_a_terminal("run", "--rm", "--name", "t9", "--", "cmd", "/c", "ver")
    assert code == 0, err
    waits = [line for line in _lines(err) if line.startswith("waiting for")]
    assert hold.sleeps
    assert len(waits) == len(hold.sleeps)
    assert waits[0].startswith("waiting for sandbox.vmgs, held open by another process (0 s")
