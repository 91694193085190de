"""Sandbox.wait's exit status (review RV18 findings 1 and 3).

- A remove by someone else while ``wait`` blocks: the exit HCS reported is returned (before:
  SandboxNotFoundError from the refresh after the exit).
- No exit recorded (the guest crashed or was terminated from outside while nothing waited):
  ``status``/``exit_type`` are None (before: 0 / ``Unknown``, a clean exit), and a
  persistent sandbox started again does not show its previous run's exit.
- An ``Unknown`` exit that HCS sent (a schema 2.1 host sends no ExitType) stays 0 / ``Unknown``.

The tests of new behaviour fail on the code before the fix (9b5641b).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from hcs_sandbox.hcs.system import ComputeSystem
from hcs_sandbox.sandbox.sandbox import Sandbox
from hcs_sandbox.sandbox.spec import SandboxSpec
from hcs_sandbox.sandbox.store import open_store


def _from_outside(sb: Sandbox, how: str) -> None:
    """Crash the guest or terminate the system through a handle of its own, as another
    program (or the guest itself) would: no hcs-sandbox object takes note."""
    system = ComputeSystem.open(sb._record.system_id)
    try:
        if how == "crash":
            system.crash({"Type": "CrashGuest"})
        else:
            system.terminate()
    finally:
        system.close()


@pytest.fixture
def running() -> Iterator[Sandbox]:
    sb = Sandbox.create(SandboxSpec(name="w"))
    sb.start()
    try:
        yield sb
    finally:
        sb.close()
        for left in Sandbox.list(all=True):
            left.remove(force=True)


def test_wait_returns_the_exit_hcs_reported_when_another_process_removes_the_record(
    running: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``rm -f`` by another process while ``wait`` blocks in HCS: the record is gone when the
    exit arrives, and wait returns that exit (ForcedExit: the remove terminated it)."""
    original = ComputeSystem.wait
    removed: list[bool] = []

    def wait_after_a_remove(self: ComputeSystem, timeout: float | None = None) -> Any:
        if not removed:  # the first wait is the waiter's: the remove happens during it
            removed.append(True)
            Sandbox.get("w").remove(force=True)  # another object: its own handle and reads
        return original(self, timeout)

    monkeypatch.setattr(ComputeSystem, "wait", wait_after_a_remove)
    info = running.wait(timeout=30)
    assert removed
    assert info.status == 0
    assert info.exit_type == "ForcedExit"
    assert info.to_dict()["exit_type"] == "ForcedExit"
    assert Sandbox.list(all=True) == []


@pytest.mark.parametrize("how", ["crash", "terminate"])
def test_an_exit_nobody_recorded_is_none_not_a_clean_0(running: Sandbox, how: str) -> None:
    running.close()  # nothing in this process holds a handle: nobody sees the exit
    _from_outside(running, how)
    waiter = Sandbox.get("w")
    info = waiter.wait(timeout=5)
    assert waiter.state == "stopped"
    assert info.status is None
    assert info.exit_type is None
    assert info.to_dict() == {"status": None, "exit_type": None, "attribution": []}
    assert waiter.inspect()["exit"] is None


def test_wait_reports_the_exit_its_own_handle_saw_before_wait_was_called(
    running: Sandbox,
) -> None:
    """The object's handle received SystemExited before ``wait`` (a guest that crashed
    between ``run``'s start and its wait): the refresh that finds the system stopped records
    that exit, so wait reports it, not "not recorded" (nor, before, a clean 0)."""
    _from_outside(running, "crash")
    events = [event.type for event in running.events(timeout=30)]  # ends with the exit
    assert events[-1] == "SystemExited"
    info = running.wait(timeout=5)
    assert info.status == 0
    assert info.exit_type == "UnexpectedExit"
    assert Sandbox.get("w").wait(timeout=5).exit_type == "UnexpectedExit"  # recorded


def test_a_restarted_persistent_sandbox_does_not_show_its_previous_exit() -> None:
    sb = Sandbox.create(SandboxSpec(name="p", persistence="persistent"))
    try:
        sb.start()
        sb.stop(timeout=5)
        assert sb.wait(timeout=5).exit_type == "GracefulExit"
        sb.start()
        assert sb.inspect()["exit"] is None  # running: no exit yet
        sb.close()
        _from_outside(sb, "crash")
        info = Sandbox.get("p").wait(timeout=5)
        assert (info.status, info.exit_type) == (None, None)
    finally:
        sb.close()
        Sandbox.get("p").remove(force=True)


@pytest.mark.parametrize("sent", [{"Status": 0}, {}])
def test_an_unknown_exit_type_that_hcs_sent_stays_a_clean_0(
    running: Sandbox, sent: dict[str, Any]
) -> None:
    """A schema 2.1 host sends ``SystemExitStatus`` without ExitType: that exit was reported,
    so it is status 0 / ``Unknown``, as before.  An exit event without a document is recorded
    as ``{}``: wait said 0 / ``Unknown`` and inspect said null (before); both say 0 /
    ``Unknown`` now."""
    running.stop(timeout=5)
    with open_store(running._state_dir) as store:
        store.update(running.id, merge_extra={"exit": sent})
    info = Sandbox.get("w").wait(timeout=5)
    assert (info.status, info.exit_type) == (0, "Unknown")
    assert Sandbox.get("w").inspect()["exit"] == {
        "status": 0,
        "exit_type": "Unknown",
        "attribution": [],
    }


# -------------------------------------------- an older run's exit is not the current run's
# (review RV19: a long-lived object holding the handle of a persistent sandbox's earlier run)


def test_refresh_does_not_record_an_earlier_runs_exit() -> None:
    # ``a`` holds run 1's handle; another object stops run 1 (GracefulExit) and starts run
    # 2, which then crashes while nothing watches.  ``a``'s refresh must not write run 1's
    # exit as run 2's (before: a clean 0 / GracefulExit for the crash).
    a = Sandbox.create(SandboxSpec(name="p", persistence="persistent"))
    try:
        a.start()
        other = Sandbox.get("p")
        other.stop(timeout=5)
        other.close()
        other = Sandbox.get("p")
        other.start()
        other.close()
        _from_outside(a, "crash")
        assert a.state == "stopped"  # a's refresh
        info = Sandbox.get("p").wait(timeout=5)
        assert (info.status, info.exit_type) == (None, None)
        assert Sandbox.get("p").inspect()["exit"] is None
    finally:
        a.close()
        Sandbox.get("p").remove(force=True)


def test_refresh_records_the_exit_of_its_own_run() -> None:
    # The same object made, started and holds the system that then crashes: its refresh
    # records what HCS sent (the attached ``run`` case).
    a = Sandbox.create(SandboxSpec(name="q", persistence="persistent"))
    try:
        a.start()
        _from_outside(a, "crash")
        assert a.state == "stopped"
        info = Sandbox.get("q").wait(timeout=5)
        assert info.exit_type == "UnexpectedExit"
    finally:
        a.close()
        Sandbox.get("q").remove(force=True)


def test_wait_does_not_record_its_exit_over_a_later_run(monkeypatch: pytest.MonkeyPatch) -> None:
    # A waiter on run 1: another object stops run 1, and starts run 2 before the waiter's
    # exit write.  The waiter returns run 1's exit; the record of run 2 keeps none (before:
    # run 1's GracefulExit, then shown for run 2's unobserved crash).
    a = Sandbox.create(SandboxSpec(name="r", persistence="persistent"))
    try:
        a.start()
        real_wait = ComputeSystem.wait
        real_remember = Sandbox._remember_exit
        stopped: list[bool] = []

        def wait(self: ComputeSystem, timeout: float | None = None) -> Any:
            if not stopped:
                stopped.append(True)
                other = Sandbox.get("r")
                other.stop(timeout=5)
                other.close()
            return real_wait(self, timeout)

        def remember(self: Sandbox, *args: Any) -> None:
            other = Sandbox.get("r")
            other.start()
            other.close()
            real_remember(self, *args)

        with monkeypatch.context() as patch:
            patch.setattr(ComputeSystem, "wait", wait)
            patch.setattr(Sandbox, "_remember_exit", remember)
            info = a.wait(timeout=10)
        assert info.exit_type == "GracefulExit"  # run 1's, as HCS reported it
        assert Sandbox.get("r").state == "running"
        assert Sandbox.get("r").inspect()["exit"] is None  # run 2 has none yet
        _from_outside(a, "crash")
        info = Sandbox.get("r").wait(timeout=5)
        assert (info.status, info.exit_type) == (None, None)
    finally:
        a.close()
        Sandbox.get("r").remove(force=True)
