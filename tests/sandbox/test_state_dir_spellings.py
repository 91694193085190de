"""A state directory reached through another spelling than the one its sandboxes were made
with (a symbolic link, a bind mount, moved, copied) behaves as before: a listed file of the
form ``<anything>/sandboxes/<id>/<rest>`` is the sandbox's own, and rm/prune act on
``<this state dir>/sandboxes/<id>/<rest>``, never on the listed path (review RV-foreign R1).
start/exec judge only the ids (R1/R4); a sound networked record costs no damage import (R2);
an edited id's compute system is judged by the Owner of the opened system and the store's
mark (R3)."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from hcs_sandbox import errors
from hcs_sandbox.hcs.system import ComputeSystem, enumerate_compute_systems
from hcs_sandbox.sandbox import damage
from hcs_sandbox.sandbox.sandbox import Sandbox
from hcs_sandbox.sandbox.spec import SandboxSpec
from hcs_sandbox.sandbox.store import close_cached_connections, open_store

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


def _folder_files(state: Path, sandbox_id: str) -> list[str]:
    folder = state / "sandboxes" / sandbox_id
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def _is_sound_and_quiet(sb: Sandbox) -> None:
    """Nothing of the record reads as damaged, and a removal would say nothing."""
    judged = sb.judged_record
    assert judged.damaged == {}
    assert damage.remove_notes(judged) == []
    assert "damaged" not in sb.inspect()


def _use_through(made_via: Path, used_via: Path, *, same_dir: bool) -> None:
    """A networked and a plain sandbox made through ``made_via`` are started, run a command
    and are removed through ``used_via`` without any damage; their folders go."""
    net = Sandbox.create(SandboxSpec(name="net1", network="nat"), state_dir=made_via)
    plain = Sandbox.create(SandboxSpec(name="plain1"), state_dir=made_via)
    ids = (net.id, plain.id)
    assert all(f.startswith(str(made_via)) for f in net.record.files)
    net.close()
    plain.close()
    close_cached_connections()
    for name, ident in zip(("net1", "plain1"), ids, strict=True):
        sb = Sandbox.get(name, state_dir=used_via)
        _is_sound_and_quiet(sb)
        sb.start()  # (a networked one was refused: review RV-foreign R1)
        assert sb.exec(["cmd", "/c", "echo", "alive"]).stdout.strip() == b"alive"
        assert _folder_files(used_via, ident) != []
        sb.remove(force=True)
        sb.close()
        assert not (used_via / "sandboxes" / ident).exists()
        if same_dir:
            assert not (made_via / "sandboxes" / ident).exists()
    with open_store(used_via) as store:
        assert store.list(all=True, kind=None) == []


def test_a_state_dir_reached_through_a_symlink(tmp_path: Path, state_dir: Path) -> None:
    """The review's repro: made through a link, used through the real path."""
    state_dir.mkdir(mode=0o700)
    link = tmp_path / "state-link"
    link.symlink_to(state_dir)
    _use_through(link, state_dir, same_dir=True)


def test_a_state_dir_used_through_a_symlink(tmp_path: Path, state_dir: Path) -> None:
    """The other way round: made through the real path, used through a link."""
    state_dir.mkdir(mode=0o700)
    link = tmp_path / "state-link"
    link.symlink_to(state_dir)
    _use_through(state_dir, link, same_dir=True)


def test_a_state_dir_reached_through_a_bind_mount(tmp_path: Path, state_dir: Path) -> None:
    """Made through a bind mount of the state directory, used through the directory."""
    if os.name == "nt" or os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("a bind mount needs root on Linux")
    state_dir.mkdir(mode=0o700)
    mounted = tmp_path / "state-mount"
    mounted.mkdir(mode=0o700)
    made = subprocess.run(
        ["mount", "--bind", str(state_dir), str(mounted)], capture_output=True, check=False
    )
    if made.returncode != 0:
        pytest.skip(f"mount --bind refused here: {made.stderr.decode(errors='replace')}")
    try:
        _use_through(mounted, state_dir, same_dir=True)
    finally:
        close_cached_connections()
        subprocess.run(["umount", str(mounted)], check=True)


def test_a_moved_state_dir(tmp_path: Path, state_dir: Path) -> None:
    """Made in one place, the state directory moved (renamed), used at the new place."""
    first = tmp_path / "first"
    first.mkdir(mode=0o700)
    net = Sandbox.create(SandboxSpec(name="net1", network="nat"), state_dir=first)
    plain = Sandbox.create(SandboxSpec(name="plain1"), state_dir=first)
    net.close()
    plain.close()
    close_cached_connections()
    moved = tmp_path / "moved"
    os.rename(first, moved)
    for name in ("net1", "plain1"):
        sb = Sandbox.get(name, state_dir=moved)
        _is_sound_and_quiet(sb)
        sb.start()
        assert sb.exec(["cmd", "/c", "echo", "alive"]).stdout.strip() == b"alive"
        sb.remove(force=True)
        sb.close()
    assert list((moved / "sandboxes").iterdir()) == []
    close_cached_connections()


def test_a_copied_state_dirs_removal_deletes_its_own_files_never_the_originals(
    world: Inspector, tmp_path: Path, state_dir: Path
) -> None:
    """A copy's record names the original's files (absolute paths): its removal deletes the
    copy's own folder, leaves the original's as it is, and says nothing; the original's
    removal then deletes the original's."""
    made = Sandbox.create(SandboxSpec(name="c"))
    made.start()
    made.stop(timeout=10.0)  # (no compute system left for the two records to share)
    ident = made.id
    made.close()
    close_cached_connections()
    copy = tmp_path / "copy"
    shutil.copytree(state_dir, copy)
    original_files = _folder_files(state_dir, ident)
    assert original_files != []
    assert _folder_files(copy, ident) == original_files
    in_copy = Sandbox.get("c", state_dir=copy)
    _is_sound_and_quiet(in_copy)
    in_copy.remove()
    in_copy.close()
    assert not (copy / "sandboxes" / ident).exists()
    assert _folder_files(state_dir, ident) == original_files  # never the original's
    close_cached_connections()
    original = Sandbox.get("c")
    _is_sound_and_quiet(original)
    original.remove()
    original.close()
    world.assert_nothing_left()


def test_a_listed_file_elsewhere_of_the_sandboxes_form_is_acted_on_in_this_state_dir(
    world: Inspector, tmp_path: Path, state_dir: Path
) -> None:
    """A listed ``<elsewhere>/sandboxes/<id>/<name>`` names ``<this state
    dir>/sandboxes/<id>/<name>``: the file elsewhere is never deleted, the own one is."""
    sb = Sandbox.create(SandboxSpec(name="x"))
    sb.close()
    elsewhere = tmp_path / "elsewhere" / "sandboxes" / sb.id
    elsewhere.mkdir(parents=True)
    victim = elsewhere / "victim.txt"
    victim.write_text("not the sandbox's")
    own = state_dir / "sandboxes" / sb.id / "victim.txt"
    own.write_text("the sandbox's")
    listed = [*sb.record.files, str(victim)]
    _set(state_dir, "x", "files", json.dumps(listed))
    again = Sandbox.get("x")
    _is_sound_and_quiet(again)
    again.remove(force=True)
    again.close()
    assert victim.read_text() == "not the sandbox's"
    assert not own.exists()
    world.assert_nothing_left()


@pytest.mark.parametrize(
    "rest",
    ["..", "../victim.txt", "./victim.txt", "a//victim.txt"],
)
def test_a_listed_file_whose_rest_has_dot_parts_is_damage(
    world: Inspector, tmp_path: Path, state_dir: Path, rest: str
) -> None:
    """``<rest>`` with a ``.``, ``..`` or empty part is not the sandbox's own: damage, left
    alone, one line said; the folder still goes by the convention."""
    sb = Sandbox.create(SandboxSpec(name="x"))
    sb.close()
    listed = f"{tmp_path}/elsewhere/sandboxes/{sb.id}/{rest}"
    _set(state_dir, "x", "files", json.dumps([*sb.record.files, listed]))
    again = Sandbox.get("x")
    judged = again.judged_record
    assert list(judged.damaged) == ["files"]
    (note,) = damage.remove_notes(judged)
    assert listed in note
    assert "its folder was removed" in note
    again.remove(force=True)
    again.close()
    world.assert_nothing_left()


def test_start_and_exec_judge_only_the_ids(world: Inspector, tmp_path: Path) -> None:
    """A networked sandbox whose file list names a file outside its folder starts and runs
    a command (they never read the file list: R1/R4); inspect shows the damage, and rm
    leaves that file."""
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    sb = Sandbox.create(SandboxSpec(name="n", network="nat"))
    sb.close()
    _set(world.state, "n", "files", json.dumps([*sb.record.files, str(victim)]))
    again = Sandbox.get("n")
    again.start()
    assert again.exec(["cmd", "/c", "echo", "alive"]).stdout.strip() == b"alive"
    assert list(again.inspect()["damaged"]) == ["files"]
    again.remove(force=True)
    again.close()
    assert victim.read_text() == "keep"
    world.assert_nothing_left()


def test_a_sound_networked_records_verbs_import_no_damage_rules(
    world: Inspector, state_dir: Path, sim_state_dir: Path
) -> None:
    """Review RV-foreign R2: the endpoint id's derivation is in the cheap check, so start,
    exec, stop and remove of a sound networked sandbox never import the damage module (a
    fresh process, as a CLI verb's)."""
    sb = Sandbox.create(SandboxSpec(name="n", network="nat"))
    sb.close()
    script = (
        "import sys\n"
        "from hcs_sandbox.sandbox.sandbox import Sandbox\n"
        "sb = Sandbox.get('n')\n"
        "sb.start()\n"
        "sb.exec(['cmd', '/c', 'echo', 'x'])\n"
        "sb.stop(timeout=10.0)\n"
        "sb.remove(force=True)\n"
        "sb.close()\n"
        "print('hcs_sandbox.sandbox.damage' in sys.modules)\n"
    )
    env = {**os.environ, "HCS_SANDBOX_SIMULATOR": str(sim_state_dir)}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, env=env
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
    world.assert_nothing_left()


def _othertool_system() -> ComputeSystem:
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
    return other


def _edited(state_dir: Path, system_id: str) -> None:
    """Sandbox x made, its own system ended, then its id edited (upper case: nothing can be
    derived from it) and its compute system id set to ``system_id``."""
    x = Sandbox.create(SandboxSpec(name="x"))
    own = x.id
    x.start()
    x.kill()
    x.close()
    _set(state_dir, "x", "id", own.upper())
    _set(state_dir, "x", "system_id", system_id)


def test_an_edited_id_is_judged_by_the_opened_systems_owner_not_an_enumeration(
    world: Inspector, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review RV-foreign R3: an enumeration filtered by ``Ids`` that lists nothing (its
    matching is documented nowhere) made the system "ours"; the Owner of the opened system
    says it is othertool's: rm -f leaves it running."""
    from hcs_sandbox.hcs import system as system_module

    real = system_module.enumerate_compute_systems

    def exact_ids(query: object = None) -> list[dict[str, object]]:
        if isinstance(query, dict) and "Ids" in query:
            return []  # (as a filter that matched the id in another form would)
        return real(query)  # type: ignore[arg-type]

    other = _othertool_system()
    try:
        _edited(state_dir, OTHER)
        with monkeypatch.context() as patched:
            patched.setattr(system_module, "enumerate_compute_systems", exact_ids)
            sb = Sandbox.get("x")
            assert "system_id" in sb.judged_record.damaged
            sb.remove(force=True)
            sb.close()
        (found,) = enumerate_compute_systems({"Ids": [OTHER]})
        assert (found["Owner"], found["State"]) == ("othertool", "Running")
    finally:
        try:
            other.terminate_and_close(timeout=30.0)
        except errors.NotFoundError:
            pass
    from hcs_sandbox.sandbox.maintenance import prune

    assert prune().failures == []
    world.assert_nothing_left()


def test_an_edited_id_naming_another_state_dirs_system_is_left_alone(
    world: Inspector, tmp_path: Path, state_dir: Path
) -> None:
    """Review RV-foreign R3: a compute system id carrying another state directory's mark
    (Owner hcs-sandbox all the same) is never this record's: rm -f leaves it running."""
    other_state = tmp_path / "other-state"
    theirs = Sandbox.create(SandboxSpec(name="theirs"), state_dir=other_state)
    theirs.start()
    try:
        _edited(state_dir, theirs.system_id)
        sb = Sandbox.get("x")
        assert "system_id" in sb.judged_record.damaged
        sb.remove(force=True)
        sb.close()
        assert theirs.state == "running"
    finally:
        theirs.remove(force=True)
        theirs.close()
    from hcs_sandbox.sandbox.maintenance import prune

    assert prune().failures == []
    world.assert_nothing_left()


def test_an_edited_id_never_makes_a_listed_file_another_sandboxs(
    world: Inspector, state_dir: Path
) -> None:
    """Review RV-foreign2 F1: for a record whose id was edited out of the store's form (its
    own id upper-cased), a listed ``<elsewhere>/sandboxes/<a>/sandboxes/<b>/sandbox.vhdx``
    was judged in sandbox a's folder and deleted in sandbox b's: b's scratch disk.  One
    derivation decides both: it is a's (``sandboxes/<a>/sandboxes/<b>/...``), never b's."""
    a = Sandbox.create(SandboxSpec(name="aa"))
    b = Sandbox.create(SandboxSpec(name="bb"))
    a.close()
    b.close()
    upper = a.id.upper()
    listed = [*a.record.files, f"/elsewhere/sandboxes/{a.id}/sandboxes/{b.id}/sandbox.vhdx"]
    _set(state_dir, "aa", "files", json.dumps(listed))
    _set(state_dir, "aa", "id", upper)
    close_cached_connections()
    before = _folder_files(state_dir, b.id)
    assert "sandbox.vhdx" in before
    edited = Sandbox.get(upper)
    try:
        edited.remove(force=True)
    finally:
        edited.close()
    assert _folder_files(state_dir, b.id) == before  # b's disk is b's
    other = Sandbox.get("bb")
    other.remove(force=True)
    other.close()
