"""prune and reconcile under one state directory leave other state directories' compute
systems and endpoints alone (QA analyst F1): every new sandbox id carries its store's mark
(a random one kept in state.db: Store.mark, sandbox/owned.py), and an owned object without
a record is an orphan here only when its id carries THIS store's mark (or none) AND names
a real directory in this state directory's sandboxes/ (reviews RV-scope F1, F2, RV-scope2
F1, F2)."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from hcs_sandbox.hcs.system import ComputeSystem
from hcs_sandbox.sandbox import network, paths
from hcs_sandbox.sandbox.maintenance import prune, reconcile
from hcs_sandbox.sandbox.planner import NAT_NETWORK_ID
from hcs_sandbox.sandbox.sandbox import Sandbox
from hcs_sandbox.sandbox.spec import SandboxSpec
from hcs_sandbox.sandbox.store import close_cached_connections, open_store

if TYPE_CHECKING:
    from conftest import Inspector


_DOCUMENT = {
    "Owner": "hcs-sandbox",
    "SchemaVersion": {"Major": 2, "Minor": 1},
    "VirtualMachine": {
        "ComputeTopology": {"Memory": {"SizeInMB": 1024}, "Processor": {"Count": 1}}
    },
}


def _plain_uuid4() -> str:
    """An id as hcs-sandbox made them before the mark (a plain uuid4 without the tag)."""
    made = str(uuid.uuid4())
    while made[19:23] == "9c5b":  # (a plain uuid4 has the tag once in 16384)
        made = str(uuid.uuid4())
    return made


def _endpoint(name: str) -> str:
    """An endpoint named ``hcs-sandbox-<name>`` on the NAT network (made by hand): its id."""
    return network.create_endpoint(
        NAT_NETWORK_ID,
        {
            "ID": str(uuid.uuid4()),
            "Name": f"{network.ENDPOINT_NAME_PREFIX}{name}",
            "HostComputeNetwork": NAT_NETWORK_ID,
            "SchemaVersion": {"Major": 2, "Minor": 0},
        },
    ).id


def _terminate(system_id: str) -> None:
    with ComputeSystem.open(system_id) as opened:
        opened.terminate_and_close(timeout=10)


def _state_of(sb: Sandbox) -> str:
    return sb.inspect()["state"]  # type: ignore[no-any-return]


def test_a_new_sandbox_id_carries_its_store_s_mark_and_is_a_guid(
    world: Inspector, tmp_path: Path
) -> None:
    sb = Sandbox.create(SandboxSpec(name="marked", network="nat"))
    try:
        parsed = uuid.UUID(sb.id)
        assert str(parsed) == sb.id  # canonical: lower case 8-4-4-4-12
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
        mark = world.mark()
        assert len(mark) == 12
        assert int(mark, 16) >= 0
        assert sb.id.endswith("-9c5b-" + mark)
        # The compute system has the sandbox's id, and the endpoint its name.
        assert sb.system_id == sb.id
        names = {e.name for e in network.list_endpoints()}
        assert names == {f"{network.ENDPOINT_NAME_PREFIX}{sb.id}"}
    finally:
        sb.remove(force=True)
    # Through a symbolic link to the state directory: the same store, the same mark.
    link = tmp_path / "link-to-state"
    link.symlink_to(world.state, target_is_directory=True)
    via_link = Sandbox.create(SandboxSpec(name="linked"), state_dir=link)
    try:
        assert via_link.id.endswith("-9c5b-" + world.mark())
        assert world.mark(link) == world.mark()
    finally:
        via_link.remove()
    # Another state directory: another mark.
    other = Sandbox.create(SandboxSpec(name="other"), state_dir=tmp_path / "other-state")
    try:
        assert other.id.endswith("-9c5b-" + world.mark(tmp_path / "other-state"))
        assert world.mark(tmp_path / "other-state") != world.mark()
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


def test_create_reads_the_store_s_mark_with_no_query_of_its_own(world: Inspector) -> None:
    """The mark is read with the schema when the store is opened (the same query) and kept
    with the connection: a create makes no query of its own for it (docs/performance.md
    tracks create's cost)."""
    import os

    from hcs_sandbox.sandbox import store as store_module

    first = Sandbox.create(SandboxSpec(name="one"))
    entry = store_module._cache()[os.path.abspath(world.state / "state.db")]
    statements: list[str] = []
    entry.conn.set_trace_callback(statements.append)
    try:
        second = Sandbox.create(SandboxSpec(name="two"))
    finally:
        entry.conn.set_trace_callback(None)
    try:
        assert any("INSERT" in text for text in statements)  # (the trace sees the create)
        assert [text for text in statements if "state_mark" in text and "schema" not in text] == []
        assert second.id.endswith(world.mark())
    finally:
        first.remove()
        second.remove()
    world.assert_nothing_left()


def test_a_state_dir_wiped_and_made_again_gets_a_new_mark_and_leaves_what_it_stranded(
    world: Inspector,
) -> None:
    """A state directory deleted whole (records, folders and all) and made again is a new
    store with a new mark: what the old one stranded is left alone and listed (the safe
    direction: it cannot be told from a live sandbox of a store moved away; docs/cli.md)."""
    sb = Sandbox.create(SandboxSpec(name="stranded", network="nat"))
    sb.start()
    system_id = sb.system_id
    endpoint_id = sb.record.endpoint_ids[0]
    old_mark = world.mark()
    sb.close()
    close_cached_connections()
    shutil.rmtree(world.state)  # the whole state directory, records and all
    try:
        # A prune of a state directory that does not exist makes none and acts on nothing
        # (s17-misc); made again (a create would make it), it is a new store, a new mark.
        missing = prune()
        assert (missing.count, missing.state_mark, missing.other_state_dir_systems) == (0, "", [])
        assert not world.state.exists()
        with open_store(world.state):
            pass
        result = prune()
        assert result.state_mark == world.mark() != old_mark
        assert result.failures == []
        assert result.count == 0
        assert result.other_state_dir_systems == [system_id]
        assert result.other_state_dir_endpoints == [endpoint_id]
        assert result.other_state_dir_marks == {system_id: old_mark, endpoint_id: old_mark}
        assert [s["Id"] for s in world.systems()] == [system_id]
        assert endpoint_id in world.endpoints()
    finally:
        _terminate(system_id)  # (first: the endpoint is attached to it)
        network.delete_endpoint(endpoint_id)
    world.assert_nothing_left()


def test_the_mark_goes_with_the_store_when_its_state_dir_is_moved(
    world: Inspector, tmp_path: Path
) -> None:
    """Review RV-scope F1: a prune at a moved state directory's old path made a store there
    with the old path's mark and terminated the moved store's live sandboxes.  The mark is
    the store's: a new store at the old path has another, and leaves them alone; at the
    new path the moved store's own orphan (its record deleted before the move) is still
    pruned."""
    old = tmp_path / "stateB"
    live = Sandbox.create(
        SandboxSpec(name="victim", network="nat", persistence="persistent"), state_dir=old
    )
    live.start()
    live_endpoint = live.record.endpoint_ids[0]
    lost = Sandbox.create(SandboxSpec(name="lost", network="nat"), state_dir=old)
    lost.start()
    lost_endpoint = lost.record.endpoint_ids[0]
    with open_store(old) as store:
        store.delete(lost.id)
    moved_mark = world.mark(old)
    live.close()
    lost.close()
    close_cached_connections()
    moved = tmp_path / "stateB2"
    old.rename(moved)
    try:
        # Nothing at the old path: a prune there makes nothing and acts on nothing (s17-misc).
        assert prune(old).count == 0
        assert not old.exists()
        # A new store at the old path: another mark; the moved store's systems and
        # endpoints are another state directory's.
        with open_store(old):
            pass
        at_old = prune(old)
        assert at_old.failures == []
        assert at_old.count == 0
        assert sorted(at_old.other_state_dir_systems) == sorted([live.id, lost.id])
        assert sorted(at_old.other_state_dir_endpoints) == sorted([live_endpoint, lost_endpoint])
        assert at_old.state_mark != moved_mark
        assert set(at_old.other_state_dir_marks.values()) == {moved_mark}
        assert sorted(s["Id"] for s in world.systems()) == sorted([live.id, lost.id])
        # The moved store keeps its mark, and prunes its own orphan at its new path.
        assert world.mark(moved) == moved_mark
        at_new = prune(moved)
        assert at_new.failures == []
        assert at_new.systems == [lost.id]
        assert at_new.endpoints == [lost_endpoint]
        assert at_new.files == [str(moved / "sandboxes" / lost.id)]
        assert at_new.other_state_dir_systems == at_new.unmarked_systems == []
        assert [s["Id"] for s in world.systems()] == [live.id]
        assert _state_of(Sandbox.get("victim", state_dir=moved)) == "running"
    finally:
        close_cached_connections()
        shutil.rmtree(old, ignore_errors=True)
        moved.rename(old)  # back where its record's files are, to remove it
    Sandbox.get("victim", state_dir=old).remove(force=True)
    prune(old)
    world.assert_nothing_left()


def test_an_owned_system_whose_id_names_a_folder_here_is_this_store_s_orphan(
    world: Inspector,
) -> None:
    """Review RV-scope F2, the upgrade case: an older hcs-sandbox's orphan (a plain uuid4
    system and its hcs-sandbox-<id> endpoint, no record) whose folder is in this state
    directory's sandboxes/ is this store's, whatever its id's mark: prune terminates the
    system, deletes the endpoint and the folder (it used to delete the folder alone and
    leave the system running as "no state directory's")."""
    old_id = _plain_uuid4()
    system = ComputeSystem.create(old_id, _DOCUMENT)
    system.start()
    system.close()
    folder = paths.ensure_sandbox_dir(paths.ensure_state_dir(world.state), old_id)
    (folder / "sandbox.vhdx").write_bytes(b"disk")
    keep = Sandbox.create(SandboxSpec(name="keep", network="nat"))  # (the NAT network)
    endpoint_id = _endpoint(old_id)
    try:
        found = reconcile()
        assert found.orphan_systems == [old_id]
        assert found.orphan_endpoints == [endpoint_id]
        assert found.orphan_files == [str(folder)]
        assert found.unmarked_systems == found.unmarked_endpoints == []
        assert found.other_state_dir_systems == found.other_state_dir_endpoints == []
        result = prune()
        assert result.failures == []
        assert result.systems == [old_id]
        assert result.endpoints == [endpoint_id]
        assert result.files == [str(folder)]
        assert [s["Id"] for s in world.systems()] == [keep.system_id]
        assert endpoint_id not in world.endpoints()
        assert not folder.exists()
    finally:
        if old_id in [s["Id"] for s in world.systems()]:
            _terminate(old_id)
        if endpoint_id in world.endpoints():
            network.delete_endpoint(endpoint_id)
        keep.remove(force=True)
    world.assert_nothing_left()


def test_another_mark_with_a_folder_here_is_left_alone_with_its_folder(
    world: Inspector,
) -> None:
    """Review RV-scope2 F2: a folder here is no evidence for an id that carries another
    store's mark (a sandboxes/ shared through a link, a folder made by hand): the system and
    endpoint are left alone as that store's, and the folder named by their id is kept."""
    foreign_id = f"{str(uuid.uuid4())[:18]}-9c5b-{'0' * 12}"
    assert world.mark() != "0" * 12
    system = ComputeSystem.create(foreign_id, _DOCUMENT)
    system.start()
    system.close()
    folder = paths.ensure_sandbox_dir(world.state, foreign_id)
    keep = Sandbox.create(SandboxSpec(name="keep", network="nat"))
    endpoint_id = _endpoint(foreign_id)
    try:
        result = prune()
        assert result.failures == []
        assert result.count == 0
        assert result.other_state_dir_systems == [foreign_id]
        assert result.other_state_dir_endpoints == [endpoint_id]
        assert result.other_state_dir_marks == {foreign_id: "0" * 12, endpoint_id: "0" * 12}
        assert folder.is_dir()  # (the guard: a left-alone id's folder is kept)
        assert sorted(s["Id"] for s in world.systems()) == sorted([keep.system_id, foreign_id])
    finally:
        _terminate(foreign_id)
        network.delete_endpoint(endpoint_id)
        shutil.rmtree(folder)
        keep.remove(force=True)
    world.assert_nothing_left()


def test_a_copied_state_dir_leaves_what_the_other_copy_made_after_the_copy_alone(
    world: Inspector, tmp_path: Path
) -> None:
    """Review RV-scope2 F1: a copy of a state directory has its mark; a sandbox made in the
    original after the copy has no record and no folder in the copy.  A prune in the copy
    leaves it running (listed: this store's mark, no folder here), and still prunes the
    copy's own orphan (its record deleted by hand, its folder kept)."""
    from hcs_sandbox.cli.prune import left_alone

    before = Sandbox.create(SandboxSpec(name="before"))  # both stores' records name it
    before.start()
    before.close()
    close_cached_connections()
    copy = tmp_path / "copy"
    shutil.copytree(world.state, copy)
    assert world.mark(copy) == world.mark()
    after = Sandbox.create(SandboxSpec(name="after", network="nat"))
    after.start()
    after_endpoint = after.record.endpoint_ids[0]
    lost = Sandbox.create(SandboxSpec(name="lost"), state_dir=copy)
    lost.start()
    with open_store(copy) as store:
        store.delete(lost.id)
    lost.close()
    found = reconcile(copy)
    assert found.orphan_systems == [lost.id]
    assert found.no_folder_systems == [after.system_id]
    assert found.no_folder_endpoints == [after_endpoint]
    assert found.to_dict()["no_folder_systems"] == [after.system_id]
    assert found.other_state_dir_systems == found.unmarked_systems == []
    result = prune(copy)
    assert result.failures == []
    assert result.systems == [lost.id]
    assert result.endpoints == []
    assert result.files == [str(copy / "sandboxes" / lost.id)]
    assert result.no_folder_systems == [after.system_id]
    assert result.to_dict()["no_folder_endpoints"] == [after_endpoint]
    lines = left_alone(result)
    why = (
        "but no folder in its sandboxes/ names it: made in a copy of this state directory "
        "after the copy, or its folder was deleted by hand)"
    )
    assert lines == [
        f"left alone (it carries this state directory's mark {world.mark()} {why}: "
        f"compute system {after.system_id}",
        f"left alone (it carries this state directory's mark {world.mark()} {why}: "
        f"endpoint {after_endpoint}",
    ]
    assert all(world.mark() in line for line in lines)
    # What the original made after the copy runs on, with its endpoint.
    assert _state_of(Sandbox.get("after")) == "running"
    assert after_endpoint in world.endpoints()
    assert after.exec(["cmd", "/c", "echo", "alive"]).stdout.strip() == b"alive"
    after.remove(force=True)
    Sandbox.get("before").remove(force=True)
    # The copy's record of it is gone's.  It names its files by their absolute path (the
    # original's folder), but a removal acts on <this state dir>/sandboxes/<id>/<rest>
    # (review RV-foreign R1): the copy's own folder goes with the record, the original's
    # is never touched from the copy.
    assert (copy / "sandboxes" / before.id).is_dir()
    assert prune(copy).records == [f"before ({before.id})"]
    assert list((copy / "sandboxes").iterdir()) == []
    assert prune(copy).files == []
    world.assert_nothing_left()


def test_a_sandboxes_folder_shared_by_two_state_dirs_is_no_evidence(
    world: Inspector, tmp_path: Path
) -> None:
    """Review RV-scope2 F2, its repro: two state directories whose sandboxes/ is one folder
    (a link).  A prune in the second leaves the first one's running sandbox, its endpoint
    and its folder alone: its id carries the first store's mark."""
    shared = tmp_path / "shared"
    shared.mkdir()
    one, two = tmp_path / "S1", tmp_path / "S2"
    for state in (one, two):
        state.mkdir()
        (state / "sandboxes").symlink_to(shared, target_is_directory=True)
    live = Sandbox.create(SandboxSpec(name="s1vm", network="nat"), state_dir=one)
    live.start()
    endpoint_id = live.record.endpoint_ids[0]
    result = prune(two)
    assert result.failures == []
    assert result.count == 0
    assert result.other_state_dir_systems == [live.system_id]
    assert result.other_state_dir_endpoints == [endpoint_id]
    assert (shared / live.id).is_dir()
    assert _state_of(Sandbox.get("s1vm", state_dir=one)) == "running"
    assert endpoint_id in world.endpoints()
    live.remove(force=True)
    assert list(shared.iterdir()) == []
    assert world.systems() == []
    assert world.endpoints() == []


def test_an_entry_that_is_not_a_real_directory_is_no_evidence(
    world: Inspector, tmp_path: Path
) -> None:
    """Only a real directory named by an id is evidence (lstat): a plain file made by hand
    named after an unmarked system's id, or a link to a directory named after one of this
    store's mark, leaves the system alone and listed, and the entry is kept."""
    old_id = _plain_uuid4()
    own_id = world.marked_id()
    for made in (old_id, own_id):
        system = ComputeSystem.create(made, _DOCUMENT)
        system.start()
        system.close()
    root = paths.ensure_state_dir(world.state) / "sandboxes"
    root.mkdir(exist_ok=True)
    (root / old_id).write_bytes(b"made by hand")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (root / own_id).symlink_to(elsewhere, target_is_directory=True)
    try:
        result = prune()
        assert result.failures == []
        assert result.count == 0
        assert result.unmarked_systems == [old_id]
        assert result.no_folder_systems == [own_id]
        assert (root / old_id).is_file()
        assert (root / own_id).is_symlink()
        assert sorted(s["Id"] for s in world.systems()) == sorted([old_id, own_id])
    finally:
        _terminate(old_id)
        _terminate(own_id)
        (root / old_id).unlink()
        (root / own_id).unlink()
    world.assert_nothing_left()


def test_owned_objects_whose_ids_carry_no_mark_are_left_alone_and_reported(
    world: Inspector,
) -> None:
    """An owned system or endpoint whose id names no state directory (made by an older
    hcs-sandbox, with a plain uuid4, or by hand) may be a live sandbox of another state
    directory: left alone and listed, never removed."""
    old_id = _plain_uuid4()  # (and no folder here names it)
    system = ComputeSystem.create(old_id, _DOCUMENT)
    system.start()
    system.close()
    keep = Sandbox.create(SandboxSpec(name="keep", network="nat"))  # (the NAT network)
    endpoints = [_endpoint(name) for name in (old_id, "lost")]
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
        _terminate(old_id)
        keep.remove(force=True)
    world.assert_nothing_left()
