"""A persistent sandbox's restart (``start`` of a stopped one: the record is ``creating`` with
``restarting`` until the end) whose record another process takes meanwhile: a forced remove
(``removing``, then deleted) or a prune that judged the restarting process dead (``stopped``).
The restart's rollback and its final ``running`` write leave that record alone (compare-and-set
on ``creating``), and the compute system the restart made does not outlive it (review RV15,
finding 1)."""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

import pytest
from race_hooks import after_start_runs, at_step, force_remove

from hcs_sandbox import errors
from hcs_sandbox.sandbox.maintenance import prune
from hcs_sandbox.sandbox.sandbox import Sandbox
from hcs_sandbox.sandbox.spec import SandboxSpec

if TYPE_CHECKING:
    from conftest import Inspector


def _stopped_persistent(name: str) -> Sandbox:
    sb = Sandbox.create(SandboxSpec(name=name, persistence="persistent", network="nat"))
    sb.start()
    sb.stop(timeout=5)
    return sb


def test_failed_restart_leaves_the_record_a_forced_remove_took(sim: Any, world: Inspector) -> None:
    # The system exists (not started yet) when another process's rm -f terminates it and
    # stops half way; the restart's start then fails.  Before: its rollback wrote "stopped"
    # over "removing" (a stopped persistent sandbox without its disk, which prune keeps).
    sb = _stopped_persistent("kept")
    progress, removed = at_step("starting", lambda: force_remove("kept", sim))
    with pytest.raises(errors.SandboxStateError) as caught:
        sb.start(progress=progress)
    assert removed == ["incomplete: E_ACCESSDENIED"]
    # Said as what happened, HCS's refusal as the cause (review RV17: before, the raw HCS
    # error with the generic "try again ... doctor" remedy, which cannot help).
    assert caught.value.state == "removing"
    assert "another process marked it removing while it was being re-created" in str(caught.value)
    assert isinstance(caught.value.__cause__, errors.HcsError)
    assert Sandbox.get("kept").record.state == "removing"
    assert world.systems() == []
    force_remove("kept")  # the documented remedy finishes it
    world.assert_nothing_left()


def test_failed_restart_after_a_forced_remove_logs_no_rollback_failure(
    sim: Any, world: Inspector, caplog: pytest.LogCaptureFixture
) -> None:
    # The remove finished (record deleted) before the restart's start failed: the rollback
    # has no record to mark and is not a failure (before: a "rollback: ... failed" warning).
    sb = _stopped_persistent("gone")
    progress, removed = at_step("starting", lambda: force_remove("gone"))
    with caplog.at_level(logging.WARNING), pytest.raises(errors.SandboxNotFoundError) as caught:
        sb.start(progress=progress)
    assert removed == ["removed"]
    assert "another process removed it while it was being re-created" in str(caught.value)
    assert isinstance(caught.value.__cause__, errors.HcsError)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    world.assert_nothing_left()


def test_restart_is_not_marked_running_over_a_forced_remove(sim: Any, world: Inspector) -> None:
    # The forced remove comes after the system started, before the restart's "running"
    # write, and stops half way.  Before: start() returned and the record said "running"
    # with no system (the remove had terminated it).
    sb = _stopped_persistent("late")
    with (
        after_start_runs(sb, lambda: force_remove("late", sim)) as removed,
        pytest.raises(errors.SandboxStateError) as caught,
    ):
        sb.start()
    assert removed == ["incomplete: E_ACCESSDENIED"]
    assert caught.value.state == "removing"
    assert Sandbox.get("late").record.state == "removing"
    assert world.systems() == []
    force_remove("late")
    world.assert_nothing_left()


def test_restart_is_not_marked_running_over_a_prune_that_stopped_it(
    sim: Any, world: Inspector
) -> None:
    # A prune that judges the restarting process dead (here: its owner pid cleared in the
    # record) terminates the restarted system and marks the record stopped, keeping the
    # disk.  The restart must not then write "running" (before: "running", no system).
    sb = _stopped_persistent("pruned")

    def prune_as_if_dead() -> object:
        other = Sandbox.get("pruned")
        other._db().update(other.id, owner_pid=0)
        return prune().marked_stopped

    with (
        after_start_runs(sb, prune_as_if_dead) as pruned,
        pytest.raises(errors.SandboxStateError) as caught,
    ):
        sb.start()
    assert pruned == [[f"pruned ({sb.id})"]]
    assert caught.value.state == "stopped"
    kept = Sandbox.get("pruned")
    assert kept.record.state == "stopped"
    assert world.systems() == []
    disks = [f for f in kept.record.files if f.endswith(".vhdx")]
    assert disks
    assert all(os.path.exists(f) for f in disks)  # the persistent disk is kept
    kept.start()  # and it starts again
    assert kept.record.state == "running"
    kept.remove(force=True)
    sb.close()
    world.assert_nothing_left()


def test_terminate_after_a_lost_restart_spares_the_next_restarts_system(
    sim: Any, world: Inspector
) -> None:
    # As above, and then a third object restarts the sandbox (a new system under the same
    # id) before this restart's "running" write.  This start fails (before: it returned as
    # if it had started the sandbox) and terminates only the system it made, through its
    # own handle: the third object's system runs on with its "running" record.
    sb = _stopped_persistent("again")
    third: list[Sandbox] = []

    def prune_then_restart() -> object:
        other = Sandbox.get("again")
        other._db().update(other.id, owner_pid=0)
        pruned = prune().marked_stopped
        third.append(Sandbox.get("again"))
        third[0].start()
        return pruned

    try:
        with (
            after_start_runs(sb, prune_then_restart) as done,
            pytest.raises(errors.SandboxStateError) as caught,
        ):
            sb.start()
        assert len(done) == 1
        assert caught.value.state == "running"
        assert [s.get("State") for s in world.systems()] == ["Running"]
        assert Sandbox.get("again").state == "running"
    finally:
        for other in third:
            other.remove(force=True)
        sb.close()
    world.assert_nothing_left()
