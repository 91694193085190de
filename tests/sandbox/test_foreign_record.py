"""The damage rules for values the store reads as sound but that name something not the
sandbox's own (QA analyst F4, F5: ``hcs_sandbox.sandbox.damage.judged``), in this process."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

from hcs_sandbox import errors
from hcs_sandbox.hcs.system import ComputeSystem, enumerate_compute_systems
from hcs_sandbox.sandbox import damage
from hcs_sandbox.sandbox.sandbox import Sandbox
from hcs_sandbox.sandbox.spec import SandboxSpec
from hcs_sandbox.sandbox.store import open_store

if TYPE_CHECKING:
    from conftest import Inspector

OTHER = "aaaaaaaa-2222-3333-4444-555555555555"


def _set(state: Path, name: str, column: str, value: object) -> None:
    conn = sqlite3.connect(state / "state.db")
    try:
        conn.execute(f"UPDATE sandboxes SET {column} = ? WHERE name = ?", (value, name))
        conn.commit()
    finally:
        conn.close()


def test_the_endpoint_id_derivation_is_the_planners() -> None:
    """damage.own_endpoint_id (no planner import on the verbs' path) gives the id the
    planner gives a sandbox's endpoint: if the planner's derivation changes, this fails."""
    from hcs_sandbox.sandbox.planner import HostFacts

    for sandbox_id in (
        "3f2a9c1e-5b7d-4e8f-9a0b-1c2d3e4f5a6b",
        "00000000-0000-4000-8000-000000000000",
    ):
        facts = HostFacts.for_sandbox(
            sandbox_id=sandbox_id,
            system_id=sandbox_id,
            sandbox_dir="/s",
            base_path=None,
            supported_schema_versions=[(2, 1)],
            path_style="posix",
        )
        assert damage.own_endpoint_id(sandbox_id) == facts.endpoint_id


def test_a_sound_record_is_judged_as_it_is(world: Inspector, state_dir: Path) -> None:
    """Nothing of its own is taken for foreign, with or without a network: the same
    object, so a sound record's verbs pay one comparison per field (no import, no HCS call)."""
    plain = Sandbox.create(SandboxSpec(name="plain"))
    nat = Sandbox.create(SandboxSpec(name="nat", network="nat"))
    try:
        assert plain._judged() is plain.record
        with open_store(state_dir) as store:
            for sb in (plain, nat):
                assert damage.judged(store, sb.record, links=True) is sb.record
    finally:
        for sb in (plain, nat):
            sb.remove(force=True)
            sb.close()
    world.assert_nothing_left()


def test_an_edited_id_and_another_tools_system_id_is_checked_with_hcs(
    world: Inspector, state_dir: Path
) -> None:
    """A record whose id was edited (upper case: nothing can be derived from it) and whose
    compute system id names a system with another Owner: the one case judged with HCS
    (SystemQuery Ids); ``rm -f`` leaves that system running and removes the record."""
    other = ComputeSystem.create(
        OTHER,
        {
            "Owner": "othertool",
            "SchemaVersion": {"Major": 2, "Minor": 1},
            "VirtualMachine": {
                "ComputeTopology": {"Memory": {"SizeInMB": 1024}, "Processor": {"Count": 1}}
            },
        },
    )
    other.start()
    x = Sandbox.create(SandboxSpec(name="x"))
    own_id = x.id
    x.start()
    x.kill()  # (its own system: stopped, so nothing of it is left running)
    x.close()
    _set(state_dir, "x", "id", own_id.upper())
    _set(state_dir, "x", "system_id", OTHER)
    try:
        sb = Sandbox.get("x")
        sb.remove(force=True)
        sb.close()
        (found,) = enumerate_compute_systems({"Ids": [OTHER]})
        assert (found["Owner"], found["State"]) == ("othertool", "Running")
    finally:
        try:
            other.terminate_and_close(timeout=30.0)
        except errors.NotFoundError:
            pass
    with open_store(state_dir) as store:
        assert store.list(all=True, kind=None) == []
    # Its folder is named by no record now: prune removes it (as any such folder).
    from hcs_sandbox.sandbox.maintenance import prune

    assert prune().failures == []
    world.assert_nothing_left()


def test_an_endpoint_id_list_naming_another_endpoint_is_damage(state_dir: Path) -> None:
    """Store level: an endpoint id not derived from the sandbox's id is named, read as
    empty; the record's own endpoint id is sound."""
    with open_store(state_dir) as store:
        made = store.reserve("e", None, {"network": "nat"})
        own = damage.own_endpoint_id(made.id)
        _set(state_dir, "e", "endpoint_ids", json.dumps([own.upper()]))
        assert damage.judged(store, store.get("e")).damaged == {}
        _set(state_dir, "e", "endpoint_ids", json.dumps([own, OTHER]))
        judged = damage.judged(store, store.get("e"))
        assert judged.endpoint_ids == ()
        assert list(judged.damaged) == ["endpoint_ids"]
        store.delete(made.id)
