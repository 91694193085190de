"""prune and reconcile under one state directory leave other state directories' compute
systems and endpoints alone (QA analyst F1): every new sandbox id carries its state
directory's mark (sandbox/owned.py), and only an owned object without a record whose id
carries THIS state directory's mark is an orphan here."""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from hcs_sandbox.hcs.system import ComputeSystem
from hcs_sandbox.sandbox import network
from hcs_sandbox.sandbox.maintenance import prune, reconcile
from hcs_sandbox.sandbox.planner import NAT_NETWORK_ID
from hcs_sandbox.sandbox.sandbox import Sandbox
from hcs_sandbox.sandbox.spec import SandboxSpec
from hcs_sandbox.sandbox.store import open_store

if TYPE_CHECKING:
    from conftest import Inspector


def _mark(state: Path | str) -> str:
    """The documented mark, computed here: SHA-256 of normcase(realpath), first 6 bytes."""
    identity = os.path.normcase(os.path.realpath(state))
    return hashlib.sha256(os.fsencode(identity)).hexdigest()[:12]


def _state_of(sb: Sandbox) -> str:
    return sb.inspect()["state"]  # type: ignore[no-any-return]


def test_a_new_sandbox_id_carries_its_state_dirs_mark_and_is_a_guid(
    world: Inspector, tmp_path: Path
) -> None:
    sb = Sandbox.create(SandboxSpec(name="marked", network="nat"))
    try:
        parsed = uuid.UUID(sb.id)
        assert str(parsed) == sb.id  # canonical: lower case 8-4-4-4-12
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
        assert sb.id.endswith("-9c5b-" + _mark(world.state))
        # The compute system has the sandbox's id, and the endpoint its name.
        assert sb.system_id == sb.id
        names = {e.name for e in network.list_endpoints()}
        assert names == {f"{network.ENDPOINT_NAME_PREFIX}{sb.id}"}
    finally:
        sb.remove(force=True)
    # Through a symbolic link to the state directory: the same mark (its real path).
    link = tmp_path / "link-to-state"
    link.symlink_to(world.state, target_is_directory=True)
    via_link = Sandbox.create(SandboxSpec(name="linked"), state_dir=link)
    try:
        assert via_link.id.endswith("-9c5b-" + _mark(world.state))
        assert _mark(link) == _mark(world.state)
    finally:
        via_link.remove()
    # Another state directory: another mark.
    other = Sandbox.create(SandboxSpec(name="other"), state_dir=tmp_path / "other-state")
    try:
        assert other.id.endswith("-9c5b-" + _mark(tmp_path / "other-state"))
        assert _mark(tmp_path / "other-state") != _mark(world.state)
    finally:
        other.remove()
    world.assert_nothing_left()


def test_prune_in_another_state_dir_leaves_a_running_sandbox_and_its_endpoint_alone(
    world: Inspector, tmp_path: Path
) -> None:
    """The QA repro through the API: a new, empty state directory's prune must not take the
    other one's live sandbox for an orphan; its own true orphan (a record deleted by hand)
    is still pruned in the same run."""
    live = Sandbox.create(SandboxSpec(name="victim", network="nat", persistence="persistent"))
    live.start()
    endpoint_id = live.record.endpoint_ids[0]
    empty = tmp_path / "empty-state"
    # A true orphan of the empty state directory: its record deleted by hand.
    lost = Sandbox.create(SandboxSpec(name="lost"), state_dir=empty)
    lost.start()
    lost_id = lost.system_id
    with open_store(empty) as store:
        store.delete(lost.id)
    lost.close()

    found = reconcile(empty)
    assert found.orphan_systems == [lost_id]
    assert found.other_state_dir_systems == [live.system_id]
    assert found.other_state_dir_endpoints == [endpoint_id]
    assert found.orphan_endpoints == []
    assert found.unmarked_systems == found.unmarked_endpoints == []
    assert found.to_dict()["other_state_dir_systems"] == [live.system_id]
    assert found.to_dict()["other_state_dir_endpoints"] == [endpoint_id]

    result = prune(empty)
    assert result.failures == []
    assert result.systems == [lost_id]
    assert result.endpoints == []
    assert result.other_state_dir_systems == [live.system_id]
    assert result.other_state_dir_endpoints == [endpoint_id]
    assert result.to_dict()["other_state_dir_systems"] == [live.system_id]
    # The other state directory's sandbox runs on, with its endpoint.
    assert _state_of(Sandbox.get("victim")) == "running"
    assert endpoint_id in world.endpoints()
    assert [s["Id"] for s in world.systems()] == [live.system_id]
    assert live.exec(["cmd", "/c", "echo", "alive"]).stdout.strip() == b"alive"
    # Its own prune sees nothing to do.
    assert prune().count == 0
    live.remove(force=True)
    world.assert_nothing_left()


def test_a_state_dir_wiped_and_made_again_still_prunes_what_it_stranded(
    world: Inspector,
) -> None:
    sb = Sandbox.create(SandboxSpec(name="stranded", network="nat"))
    sb.start()
    system_id = sb.system_id
    endpoint_id = sb.record.endpoint_ids[0]
    sb.close()
    shutil.rmtree(world.state)  # the whole state directory, records and all
    result = prune()  # made again at the same path: the same mark
    assert result.failures == []
    assert result.systems == [system_id]
    assert result.endpoints == [endpoint_id]
    world.assert_nothing_left()


def test_owned_objects_whose_ids_carry_no_mark_are_left_alone_and_reported(
    world: Inspector,
) -> None:
    """An owned system or endpoint whose id names no state directory (made by an older
    hcs-sandbox, with a plain uuid4, or by hand) may be a live sandbox of another state
    directory: left alone and listed, never removed."""
    old_id = str(uuid.uuid4())
    while old_id[19:23] == "9c5b":  # (a plain uuid4 has the tag once in 16384)
        old_id = str(uuid.uuid4())
    document = {
        "Owner": "hcs-sandbox",
        "SchemaVersion": {"Major": 2, "Minor": 1},
        "VirtualMachine": {
            "ComputeTopology": {"Memory": {"SizeInMB": 1024}, "Processor": {"Count": 1}}
        },
    }
    system = ComputeSystem.create(old_id, document)
    system.start()
    system.close()
    keep = Sandbox.create(SandboxSpec(name="keep", network="nat"))  # (the NAT network)
    endpoints = [
        network.create_endpoint(
            NAT_NETWORK_ID,
            {
                "ID": str(uuid.uuid4()),
                "Name": f"{network.ENDPOINT_NAME_PREFIX}{name}",
                "HostComputeNetwork": NAT_NETWORK_ID,
                "SchemaVersion": {"Major": 2, "Minor": 0},
            },
        ).id
        for name in (old_id, "lost")
    ]
    try:
        found = reconcile()
        assert found.unmarked_systems == [old_id]
        assert sorted(found.unmarked_endpoints) == sorted(endpoints)
        assert found.orphan_systems == found.orphan_endpoints == []
        assert found.other_state_dir_systems == found.other_state_dir_endpoints == []
        assert found.clean  # nothing this state directory may remove
        result = prune()
        assert result.count == 0
        assert result.unmarked_systems == [old_id]
        assert sorted(result.to_dict()["unmarked_endpoints"]) == sorted(endpoints)
        assert old_id in [s["Id"] for s in world.systems()]
        assert set(endpoints) <= set(world.endpoints())
    finally:
        for endpoint_id in endpoints:
            network.delete_endpoint(endpoint_id)
        with ComputeSystem.open(old_id) as opened:
            opened.terminate_and_close(timeout=10)
        keep.remove(force=True)
    world.assert_nothing_left()
