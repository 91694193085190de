"""``wait`` and ``run`` (no COMMAND) after a kill, a crash or a concurrent remove (review
RV18 findings 1-3).

The other process acts while this one blocks in HCS's wait: ``ComputeSystem.wait`` is
wrapped so that the first call made by ``Sandbox.wait`` first lets it act (a ``kill`` or
``rm -f`` CLI subprocess, or a guest crash through a handle of its own), then waits as
usual.  No sleeps: the exit event arrives after the action, whatever the timing.

The tests of new behaviour fail on the code before the fix (9b5641b).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cli_support import Result

from hcs_sandbox.hcs.system import ComputeSystem
from hcs_sandbox.sandbox.sandbox import Sandbox

Cli = Callable[..., Result]


def _crash(name: str, how: str = "crash") -> None:
    """A guest crash (or a termination from outside hcs-sandbox) through a handle of its own."""
    system = ComputeSystem.open(Sandbox.get(name).record.system_id)
    try:
        if how == "crash":
            system.crash({"Type": "CrashGuest"})
        else:
            system.terminate()
    finally:
        system.close()


@pytest.fixture
def during_wait(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Callable[[], None]]]:
    """Append an action: it runs once, inside ``Sandbox.wait``, before HCS's wait blocks."""
    actions: list[Callable[[], None]] = []
    inside: list[bool] = []
    sandbox_wait = Sandbox.wait
    system_wait = ComputeSystem.wait

    def wait(self: Sandbox, timeout: float | None = None) -> Any:
        inside.append(True)
        try:
            return sandbox_wait(self, timeout)
        finally:
            inside.pop()

    def blocking_wait(self: ComputeSystem, timeout: float | None = None) -> Any:
        if inside and actions:
            actions.pop(0)()
        return system_wait(self, timeout)

    monkeypatch.setattr(Sandbox, "wait", wait)
    monkeypatch.setattr(ComputeSystem, "wait", blocking_wait)
    yield actions
    assert actions == []  # every action ran


# ------------------------------------------------- 1: rm -f by another process during wait


@pytest.mark.parametrize("json_out", [False, True])
def test_wait_prints_the_forced_exit_when_another_process_removes_it(
    cli: Cli, cli_proc: Cli, during_wait: list[Callable[[], None]], json_out: bool
) -> None:
    assert cli("run", "-d", "--name", "w3").code == 0
    removed: list[Result] = []
    during_wait.append(lambda: removed.append(cli_proc("rm", "-f", "w3")))
    result = cli("wait", *(["--json"] if json_out else []), "w3")
    assert removed[0].code == 0, removed[0].err
    assert result.code == 0, result.err
    if json_out:
        (data,) = result.json()
        assert (data["name"], data["status"], data["exit_type"]) == ("w3", 0, "ForcedExit")
    else:
        assert result.out.strip() == "0x00000000 ForcedExit"
    assert result.err_lines == []
    assert cli("ls", "-a", "-q").out.strip() == ""


# ------------------------------------------- 2: run's exit code after a kill or a crash


def test_run_exits_1_after_a_kill(
    cli: Cli, cli_proc: Cli, during_wait: list[Callable[[], None]]
) -> None:
    killed: list[Result] = []
    during_wait.append(lambda: killed.append(cli_proc("kill", "r1")))
    result = cli("run", "--rm", "--name", "r1")
    assert killed[0].code == 0, killed[0].err
    assert result.out.strip() == "0x00000000 ForcedExit"
    assert result.code == 1


def test_run_exits_1_after_a_guest_crash(cli: Cli, during_wait: list[Callable[[], None]]) -> None:
    during_wait.append(lambda: _crash("r2"))
    result = cli("run", "--rm", "--name", "r2")
    assert result.out.strip() == "0x00000000 UnexpectedExit"
    assert result.code == 1
    assert cli("ls", "-a", "-q").out.strip() == ""


def test_run_json_exits_1_after_a_guest_crash(
    cli: Cli, during_wait: list[Callable[[], None]]
) -> None:
    during_wait.append(lambda: _crash("r3"))
    result = cli("run", "--rm", "--json", "--name", "r3")
    assert result.json()["exit_type"] == "UnexpectedExit"
    assert result.code == 1


def test_run_exits_0_after_a_stop_from_another_process(
    cli: Cli, cli_proc: Cli, during_wait: list[Callable[[], None]]
) -> None:
    stopped: list[Result] = []
    during_wait.append(lambda: stopped.append(cli_proc("stop", "r4")))
    result = cli("run", "--rm", "--name", "r4")
    assert stopped[0].code == 0, stopped[0].err
    assert result.out.strip() == "0"
    assert result.code == 0


# ----------------------------------------------------- 3: an exit nobody recorded


@pytest.mark.parametrize("how", ["crash", "terminate"])
def test_wait_prints_unknown_for_an_exit_nobody_recorded(cli: Cli, how: str) -> None:
    assert cli("run", "-d", "--name", "w5").code == 0
    _crash("w5", how)  # while no hcs-sandbox process waits
    result = cli("wait", "w5")
    assert result.code == 0, result.err
    assert result.out.strip() == "unknown"
    (data,) = cli("wait", "--json", "w5").json()
    assert (data["status"], data["exit_type"]) == (None, None)
    (shown,) = cli("inspect", "w5").json()
    assert shown["state"] == "stopped"
    assert shown["exit"] is None
    assert cli("rm", "w5").code == 0


def test_wait_prints_0_for_an_unknown_exit_type_hcs_sent(cli: Cli) -> None:
    """A schema 2.1 host's SystemExitStatus has no ExitType: reported, so a clean ``0``."""
    from hcs_sandbox.sandbox.store import open_store

    assert cli("run", "-d", "--name", "w6").code == 0
    assert cli("stop", "w6").code == 0
    sandbox = Sandbox.get("w6")
    with open_store(sandbox._state_dir) as store:
        store.update(sandbox.id, merge_extra={"exit": {"Status": 0}})
    assert cli("wait", "w6").out.strip() == "0"
    (data,) = cli("wait", "--json", "w6").json()
    assert (data["status"], data["exit_type"]) == (0, "Unknown")
    assert cli("rm", "w6").code == 0


def test_status_text_and_is_clean() -> None:
    from hcs_sandbox.cli.wait import is_clean, status_text

    assert status_text(None, None) == "unknown"
    assert not is_clean(None, None)
    assert is_clean(0, "Unknown")
    assert is_clean(0, "GracefulExit")
    assert not is_clean(0, "ForcedExit")
    assert not is_clean(0, "UnexpectedExit")
    assert not is_clean(0x80004005, "GracefulExit")
    assert status_text(0x80004005, "GracefulExit") == "0x80004005 GracefulExit"
