"""A sandbox whose record has a damaged field (not JSON at all: tests/sandbox/
test_store_damaged.py): sandbox/damage.py decides what each verb may do with it; what
removes it (rm, prune) leaves nothing, also after a failure (reviews RV54 F2, RV55)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from hcs_sandbox import errors
from hcs_sandbox.sandbox import storage
from hcs_sandbox.sandbox.maintenance import prune, reconcile
from hcs_sandbox.sandbox.sandbox import Sandbox
from hcs_sandbox.sandbox.spec import SandboxSpec
from hcs_sandbox.sandbox.store import open_store

if TYPE_CHECKING:
    from conftest import Inspector


def _write(state: Path, record_id: str, column: str, text: str | bytes) -> None:
    conn = sqlite3.connect(state / "state.db")
    try:
        conn.execute(f"UPDATE sandboxes SET {column} = ? WHERE id = ?", (text, record_id))
        conn.commit()
    finally:
        conn.close()


def _stored(state: Path, record_id: str, column: str) -> Any:
    conn = sqlite3.connect(state / "state.db")
    try:
        return conn.execute(
            f"SELECT {column} FROM sandboxes WHERE id = ?", (record_id,)
        ).fetchone()[0]
    finally:
        conn.close()


# ---------------------------------------------------------------------------------------
# What each verb may do (sandbox/damage.py)
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("column", ["files", "endpoint_ids", "extra"])
def test_verbs_that_work_in_it_refuse_it_before_doing_anything(
    world: Inspector, state_dir: Path, column: str, tmp_path: Path
) -> None:
    made = Sandbox.create(SandboxSpec(name="dmg", network="nat"))
    made.start()
    made.close()
    _write(state_dir, made.id, column, "oops")
    sandbox = Sandbox.get("dmg")
    calls: list[Any] = [
        sandbox.start,
        lambda: sandbox.exec(["cmd", "/c", "ver"]),
        lambda: sandbox.spawn(["cmd"]),
        lambda: sandbox.copy_in(str(tmp_path), "C:\\x"),
        lambda: sandbox.copy_out("C:\\x", str(tmp_path)),
        lambda: sandbox.map(str(tmp_path), "C:\\x"),
        lambda: sandbox.unmap("C:\\x"),
        lambda: sandbox.publish(8080, 80),
        lambda: sandbox.unpublish(8080),
    ]
    for call in calls:
        with pytest.raises(errors.StoreError) as caught:
            call()
        assert f"its record in the state database is damaged: {column} (not JSON" in str(
            caught.value
        )
        assert caught.value.remedy == f"remove the sandbox: hcs-sandbox rm -f {made.id}"
    assert _stored(state_dir, made.id, column) == "oops"  # nothing written
    sandbox.pause()  # state only: allowed
    sandbox.resume()
    info = sandbox.inspect()
    assert list(info["damaged"]) == [column]
    sandbox.remove(force=True)
    sandbox.close()
    world.assert_nothing_left()


def test_damaged_labels_alone_refuse_nothing(world: Inspector, state_dir: Path) -> None:
    """Labels are read by ls and inspect alone (listed, filtered on): damaged, they are
    unknown there, and the sandbox is still started and used."""
    made = Sandbox.create(SandboxSpec(name="dmg", persistence="persistent"))
    made.start()
    made.stop(timeout=5)
    made.close()
    _write(state_dir, made.id, "labels", "oops")
    sandbox = Sandbox.get("dmg")
    sandbox.start()  # a persistent sandbox's start re-creates its system
    assert sandbox.exec(["cmd", "/c", "ver"]).exit_code == 0
    assert list(sandbox.inspect()["damaged"]) == ["labels"]
    assert _stored(state_dir, made.id, "labels") == "oops"
    sandbox.remove(force=True)
    sandbox.close()
    world.assert_nothing_left()


def test_a_failed_removal_of_a_damaged_file_list_is_finished_by_rm_or_prune(
    world: Inspector, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The folder found by the folder convention fails to delete: the removal says so and
    leaves the record ``removing``; a second ``rm -f`` (then, for another one, ``prune``
    once its remover died) finishes it."""
    for name in ("a", "b"):
        Sandbox.create(SandboxSpec(name=name, network="nat")).close()
    ids = {name: Sandbox.get(name).id for name in ("a", "b")}
    for record_id in ids.values():
        _write(state_dir, record_id, "files", "oops")
    real = storage.remove_path
    failing = {"on": True}

    def remove_path(path: Any, **kw: Any) -> bool:
        if failing["on"]:
            raise errors.StorageError(f"cannot delete {path} (injected)")
        return real(path, **kw)

    monkeypatch.setattr(storage, "remove_path", remove_path)
    for name in ("a", "b"):
        sandbox = Sandbox.get(name)
        with pytest.raises(errors.StorageError, match="injected"):
            sandbox.remove(force=True)
        sandbox.close()
    assert sorted(world.records()) == ["a:removing", "b:removing"]
    assert world.endpoints() == []  # the rest was released
    failing["on"] = False
    again = Sandbox.get("a")
    again.remove(force=True)
    again.close()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with open_store(state_dir) as store:
        store.update(ids["b"], owner_pid=dead.pid)
    report = prune()
    assert report.failures == []
    assert report.records == [f"b ({ids['b']})"]
    world.assert_nothing_left()


def test_a_persistent_record_left_creating_with_a_damaged_extra_keeps_its_disk(
    world: Inspector, state_dir: Path
) -> None:
    """Its extra would say whether a restart was cut short (``restarting``): prune cannot
    tell, so it keeps the user's disk and marks it stopped, as for a cut-short restart."""
    made = Sandbox.create(SandboxSpec(name="keep", persistence="persistent"))
    made.close()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with open_store(state_dir) as store:
        store.update(made.id, state="creating", owner_pid=dead.pid)
    _write(state_dir, made.id, "extra", "oops")
    assert reconcile().restart_interrupted == [f"keep ({made.id})"]
    report = prune()
    assert report.marked_stopped == [f"keep ({made.id})"]
    assert report.records == []
    assert report.files == []
    assert report.damaged == [
        f"keep ({made.id}): extra (not JSON (Expecting value: line 1 column 1 (char 0)))"
    ]
    assert world.records() == ["keep:stopped"]
    assert any(name.endswith("sandbox.vhdx") for name in world.files())
    assert _stored(state_dir, made.id, "extra") == "oops"
    Sandbox.get("keep").remove(force=True)
    world.assert_nothing_left()


def test_prune_does_not_take_the_endpoint_of_a_live_damaged_record_for_an_orphan(
    world: Inspector, state_dir: Path
) -> None:
    made = Sandbox.create(SandboxSpec(name="live", network="nat"))
    made.start()
    made.close()
    (endpoint,) = world.endpoints()
    _write(state_dir, made.id, "endpoint_ids", "{}")
    assert reconcile().orphan_endpoints == []
    report = prune()
    assert report.endpoints == []
    assert report.failures == []
    assert world.endpoints() == [endpoint]
    Sandbox.get("live").remove(force=True)
    world.assert_nothing_left()


@pytest.mark.parametrize("spec_damaged", [False, True])
def test_a_vhdx_bases_grant_is_taken_back_from_the_spec_when_the_extra_is_damaged(
    world: Inspector, state_dir: Path, sim: Any, tmp_path: Path, spec_damaged: bool
) -> None:
    """The extra lists the files outside the folder granted to the VM (a vhdx: base's disk);
    damaged, the spec tells that file.  With the spec damaged too nothing tells it:
    the removal leaves that grant and says so (damage.remove_note)."""
    from hcs_sandbox.hcs import storage as hcs_storage
    from hcs_sandbox.sandbox import damage
    from hcs_sandbox.sandbox.spec import BaseImage

    disk = tmp_path / "base.vhdx"
    hcs_storage.create_vhdx(disk, 1024**3)
    made = Sandbox.create(SandboxSpec(name="disk", base=BaseImage("vhdx", str(disk))))
    made.close()
    system = made.system_id.lower()
    assert str(disk) in sim.store.read_grants()[system]
    _write(state_dir, made.id, "extra", "oops")
    if spec_damaged:
        _write(state_dir, made.id, "spec", "{oops")
    sandbox = Sandbox.get("disk")
    note = damage.remove_note(sandbox.record)
    sandbox.remove(force=True)
    sandbox.close()
    left = sim.store.read_grants().get(system, [])
    if spec_damaged:
        assert note is not None
        assert "if it had a vhdx: base, the VM access granted to that disk was not" in note
        assert left == [str(disk)]
        from hcs_sandbox.sandbox import storage as storage_module

        storage_module.revoke_vm_access(made.system_id, str(disk))  # (by hand)
    else:
        assert note is None
        assert left == []
    assert world.records() == []
    assert world.files() == []
    assert sim.store.read_grants().get(system, []) == []


def test_two_removals_of_a_hand_edited_record_at_once_leave_the_other_sandbox_alone(
    world: Inspector, state_dir: Path
) -> None:
    """Review RV60 F1: x's id was edited by hand into y's in upper case.  Two objects of x
    (two ``rm -f`` at once) each remove it: the second one's delete of the id as stored
    must find nothing, not fall back to the canonical form, which is y's record."""
    x = Sandbox.create(SandboxSpec(name="x"))
    y = Sandbox.create(SandboxSpec(name="y"))
    x.close()
    conn = sqlite3.connect(state_dir / "state.db")
    try:
        conn.execute("UPDATE sandboxes SET id = ? WHERE name = 'x'", (y.id.upper(),))
        conn.commit()
    finally:
        conn.close()
    first, second = Sandbox.get("x"), Sandbox.get("x")
    assert first.id == second.id == y.id.upper()
    first.remove(force=True)
    second.remove(force=True)
    with open_store(state_dir) as store:
        assert [r.name for r in store.list(all=True, kind=None)] == ["y"]
    first.close()
    second.close()
    y.remove(force=True)
    y.close()


def test_prune_stops_at_a_busy_database_instead_of_waiting_once_per_record(
    world: Inspector, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review RV60 F2: prune judges each record in its own try (RV58 F3), but a database
    that is busy past its timeout (or damaged) is no record's fault: prune stops at the
    first such error, with that one error, instead of waiting the timeout once per record
    and printing the same line for each."""
    import functools
    import time

    from hcs_sandbox.sandbox import store as store_module

    for name in ("p1", "p2", "p3"):
        made = Sandbox.create(SandboxSpec(name=name))
        made.close()
    with open_store(state_dir) as store:
        for record in store.list(all=True, kind=None):
            store.update(record.id, state="removing", owner_pid=0)  # a remover that exited
    monkeypatch.setattr(  # (prune imports it when it runs)
        store_module, "open_store", functools.partial(store_module.open_store, timeout=0.3)
    )
    blocker = sqlite3.connect(state_dir / "state.db", isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")
        began = time.monotonic()
        with pytest.raises(errors.StoreError, match="is busy") as caught:
            prune()
        assert time.monotonic() - began < 0.3 * 3  # one timeout, not one per record
        assert isinstance(caught.value, errors.StateDatabaseError)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert prune().failures == []
    world.assert_nothing_left()
