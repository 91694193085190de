"""A create rolled back after its compute system could not be terminated keeps the evidence
the next prune needs (the record, marked ``error``, and the sandbox folder), so that prune
ends the system: prune takes an owned system without a record for this store's only when
its folder is here (s17-scope's rule), and the rollback used to delete both."""

from __future__ import annotations

from typing import Any

import pytest

from hcs_sandbox.sandbox.rollback import UndoStack
from hcs_sandbox.sandbox.sandbox import Sandbox
from hcs_sandbox.sandbox.spec import SandboxSpec
from hcs_sandbox.sandbox.store import Store

E_FAIL = 0x80004005


def test_an_evidence_step_runs_when_nothing_before_it_failed() -> None:
    done: list[str] = []
    undo = UndoStack()
    undo.push_evidence("record", lambda: done.append("record"), keep=lambda: done.append("k"))
    undo.push("system", lambda: done.append("system"))
    assert undo.unwind() == []
    assert done == ["system", "record"]


def test_after_a_failed_step_an_evidence_step_is_kept() -> None:
    done: list[str] = []

    def fails() -> None:
        raise OSError("cannot terminate")

    undo = UndoStack()
    undo.push_evidence("record", lambda: done.append("record"), keep=lambda: done.append("k"))
    undo.push_evidence("folder", lambda: done.append("folder"))
    undo.push("endpoint", lambda: done.append("endpoint"))
    undo.push("system", fails)
    assert [f.description for f in undo.unwind()] == ["system"]
    assert done == ["endpoint", "k"]  # the folder kept, the record marked instead


def test_a_create_whose_system_survives_its_rollback_is_left_for_prune(
    sim: Any, world: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hcs_sandbox.sandbox.maintenance import prune

    real = Store.update

    def update(self: Store, id: str, **kwargs: Any) -> Any:
        if kwargs.get("state") == "created":
            raise OSError("disk full")  # a failure after the compute system was made
        return real(self, id, **kwargs)

    monkeypatch.setattr(Store, "update", update)
    sim.inject("HcsTerminateComputeSystem", nth=1, hresult=E_FAIL, where="call")
    with pytest.raises(OSError, match="disk full"):
        Sandbox.create(SandboxSpec(name="stuck"))
    sim._faults.clear()
    monkeypatch.setattr(Store, "update", real)
    assert [s.get("State") for s in world.systems()] == ["Created"]  # not terminated
    assert world.records() == ["stuck:error"]  # kept for prune, not in progress
    assert world.files() != []  # the folder is the evidence prune needs
    report = prune()
    assert report.failures == [], report.failures
    world.assert_nothing_left()


def test_a_failed_evidence_step_keeps_nothing_else() -> None:
    """A file that could not be deleted (or a Ctrl+C while waiting for it) is found by prune
    without a record: the record is still deleted (test_held_files' Ctrl+C during a
    rollback's pause)."""
    done: list[str] = []

    def fails() -> None:
        raise OSError("held open")

    undo = UndoStack()
    undo.push_evidence("record", lambda: done.append("record"), keep=lambda: done.append("k"))
    undo.push_evidence("folder", fails)
    undo.push("system", lambda: done.append("system"))
    assert [f.description for f in undo.unwind()] == ["folder"]
    assert done == ["system", "record"]


@pytest.mark.parametrize("terminate_fails", [True, False], ids=["left", "cleaned"])
def test_the_error_says_when_prune_must_end_what_the_rollback_left(
    sim: Any, world: Any, monkeypatch: pytest.MonkeyPatch, terminate_fails: bool
) -> None:
    """The user is told: when the rollback kept the record and folder for prune, the
    error's remedy says so (and only then)."""
    from hcs_sandbox import errors
    from hcs_sandbox.sandbox.maintenance import prune

    real = Store.update

    def update(self: Store, id: str, **kwargs: Any) -> Any:
        if kwargs.get("state") == "created":
            raise errors.StorageError("the disk is full", remedy="free some space")
        return real(self, id, **kwargs)

    monkeypatch.setattr(Store, "update", update)
    if terminate_fails:
        sim.inject("HcsTerminateComputeSystem", nth=1, hresult=E_FAIL, where="call")
    with pytest.raises(errors.StorageError) as raised:
        Sandbox.create(SandboxSpec(name="told"))
    sim._faults.clear()
    monkeypatch.setattr(Store, "update", real)
    remedy = raised.value.remedy or ""
    assert remedy.startswith("free some space")
    assert ("'hcs-sandbox prune' ends it" in remedy) is terminate_fails
    assert ("'hcs-sandbox prune' ends it" in str(raised.value)) is terminate_fails
    assert world.records() == (["told:error"] if terminate_fails else [])
    assert prune().failures == []
    world.assert_nothing_left()
