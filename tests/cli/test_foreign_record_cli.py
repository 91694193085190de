"""A record edited by hand to name what is not the sandbox's own (QA analyst F4, F5):
another tool's compute system or endpoint (``system_id``, ``endpoint_ids``), files and
folders outside its folder (``files``).  ``kill``, ``stop``, ``rm``/``rm -f``, ``inspect`` and
``prune`` never terminate, delete or report that foreign object as the sandbox's; the
sandbox's own system, endpoint and files are still handled; what was left is said once
each.  Each CLI call runs in its own process, as a user's does."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_support import CliEnv, Result

Proc = Callable[..., Result]

FOREIGN_SYSTEM = "aaaaaaaa-2222-3333-4444-555555555555"
FOREIGN_NETWORK = "22222222-3333-4444-5555-666666666666"
FOREIGN_ENDPOINT = "bbbbbbbb-4444-5555-6666-777777777777"


@pytest.fixture
def othertool(cli_env: CliEnv) -> Iterator[None]:
    """A running compute system with Owner ``othertool`` and an endpoint of ``othertool``
    on its own NAT network, made through the project's hcs layer (as the QA report did);
    removed again after the test."""
    from hcs_sandbox.hcs import network as hcn
    from hcs_sandbox.hcs.system import ComputeSystem

    system = ComputeSystem.create(
        FOREIGN_SYSTEM,
        {
            "Owner": "othertool",
            "SchemaVersion": {"Major": 2, "Minor": 1},
            "VirtualMachine": {
                "ComputeTopology": {"Memory": {"SizeInMB": 1024}, "Processor": {"Count": 1}}
            },
        },
    )
    system.start()
    system.close()
    net = hcn.Network.create(
        FOREIGN_NETWORK,
        {
            "Name": "othertool-nat",
            "Type": "NAT",
            "SchemaVersion": {"Major": 2, "Minor": 0},
            "Ipams": [
                {
                    "Type": "Static",
                    "Subnets": [
                        {
                            "IpAddressPrefix": "10.99.0.0/24",
                            "Routes": [{"NextHop": "10.99.0.1", "DestinationPrefix": "0.0.0.0/0"}],
                        }
                    ],
                }
            ],
        },
    )
    endpoint = hcn.Endpoint.create(
        net,
        FOREIGN_ENDPOINT,
        {
            "Name": "othertool-ep",
            "SchemaVersion": {"Major": 2, "Minor": 0},
            "HostComputeNetwork": FOREIGN_NETWORK,
        },
    )
    endpoint.close()
    net.close()
    try:
        yield
    finally:
        from hcs_sandbox import errors

        try:
            left = ComputeSystem.open(FOREIGN_SYSTEM)
        except errors.NotFoundError:
            pass  # (terminated by the code under test: what it must not do)
        else:
            left.terminate_and_close(timeout=30.0)
        hcn.delete_endpoint(FOREIGN_ENDPOINT, missing_ok=True)
        hcn.delete_network(FOREIGN_NETWORK, missing_ok=True)


def _foreign_state() -> tuple[str | None, bool]:
    """The othertool system's state (None: gone) and whether its endpoint still exists."""
    from hcs_sandbox.hcs import network as hcn
    from hcs_sandbox.hcs.system import enumerate_compute_systems

    found = enumerate_compute_systems({"Ids": [FOREIGN_SYSTEM]})
    state = str(found[0].get("State")) if found else None
    if found:
        assert found[0].get("Owner") == "othertool"
    return state, FOREIGN_ENDPOINT in [e.lower() for e in hcn.enumerate_endpoints(None)]


def _own_system_state(system_id: str) -> str | None:
    from hcs_sandbox.hcs.system import enumerate_compute_systems

    found = enumerate_compute_systems({"Ids": [system_id]})
    return str(found[0].get("State")) if found else None


def _endpoints() -> list[str]:
    from hcs_sandbox.hcs import network as hcn

    return sorted(e.lower() for e in hcn.enumerate_endpoints(None))


def _set(state: Path, name: str, column: str, value: Any) -> None:
    """A hand edit of one column of the record named ``name``."""
    conn = sqlite3.connect(state / "state.db")
    try:
        conn.execute(f"UPDATE sandboxes SET {column} = ? WHERE name = ?", (value, name))
        conn.commit()
    finally:
        conn.close()


def _files(state: Path, name: str) -> list[str]:
    conn = sqlite3.connect(state / "state.db")
    try:
        (text,) = conn.execute("SELECT files FROM sandboxes WHERE name = ?", (name,)).fetchone()
    finally:
        conn.close()
    return list(json.loads(text))


def _point_at_othertool(cli_proc: Proc, cli_env: CliEnv, name: str) -> dict[str, Any]:
    """``run -d --network nat`` sandbox ``name``, its record then edited to name the
    othertool system and endpoint; returns what ``inspect`` showed before the edit."""
    made = cli_proc("run", "-d", "--name", name, "--network", "nat")
    assert made.code == 0, made.err
    (info,) = cli_proc("inspect", name).json()
    assert info["system_id"] == info["id"]
    assert len(info["endpoints"]) == 1
    _set(cli_env.state, name, "system_id", FOREIGN_SYSTEM)
    _set(cli_env.state, name, "endpoint_ids", json.dumps([FOREIGN_ENDPOINT]))
    return dict(info)


def _warnings(result: Result) -> list[str]:
    return [line for line in result.err_lines if line.startswith("warning:")]


@pytest.mark.usefixtures("othertool")
def test_inspect_shows_the_edited_ids_as_damage_not_the_foreign_systems_state(
    cli_proc: Proc, cli_env: CliEnv
) -> None:
    """It reported the othertool system's state as the sandbox's (QA F5)."""
    info = _point_at_othertool(cli_proc, cli_env, "x")
    assert cli_proc("kill", "x").code == 0  # the sandbox's own system: stopped
    _set(cli_env.state, "x", "state", "running")  # (as if the kill had not been recorded)
    shown = cli_proc("inspect", "x")
    assert shown.code == 0, shown.err
    (x,) = shown.json()
    assert x["damaged"]["system_id"].startswith(
        f"names a compute system not the sandbox's ('{FOREIGN_SYSTEM}'), left alone"
    )
    assert x["damaged"]["endpoint_ids"].startswith(
        f"names endpoints not the sandbox's ('{FOREIGN_ENDPOINT}'), left alone"
    )
    assert (x["system_id"], x["endpoints"], x["statistics"]) == (None, None, None)
    assert x["state"] == "running"  # (as recorded: not the othertool system's)
    assert _foreign_state() == ("Running", True)
    assert cli_proc("rm", "-f", "x").code == 0
    assert _own_system_state(str(info["id"])) in (None, "Stopped")
    assert _foreign_state() == ("Running", True)


@pytest.mark.usefixtures("othertool")
@pytest.mark.parametrize("verb", ["kill", "stop"])
def test_kill_and_stop_end_the_sandboxs_own_system_not_the_foreign_one(
    cli_proc: Proc, cli_env: CliEnv, verb: str
) -> None:
    """``kill`` terminated the othertool system and left the sandbox's own running (QA F5)."""
    info = _point_at_othertool(cli_proc, cli_env, "x")
    done = cli_proc(verb, "x")
    assert done.code == 0, done.err
    assert _foreign_state() == ("Running", True)
    assert _own_system_state(str(info["id"])) in (None, "Stopped")
    (x,) = cli_proc("ls", "-a", "--json").json()
    assert x["state"] == "stopped"


@pytest.mark.usefixtures("othertool")
def test_rm_f_removes_the_sandbox_and_leaves_the_foreign_system_and_endpoint(
    cli_proc: Proc, cli_env: CliEnv
) -> None:
    """``rm -f`` terminated the othertool system, deleted its endpoint and left the
    sandbox's own system for prune (QA F5)."""
    info = _point_at_othertool(cli_proc, cli_env, "x")
    own_endpoint = str(info["endpoints"][0]).lower()
    assert own_endpoint in _endpoints()
    removed = cli_proc("rm", "-f", "x")
    assert removed.code == 0, removed.err
    assert _foreign_state() == ("Running", True)
    assert _own_system_state(str(info["id"])) in (None, "Stopped")  # its own: ended
    assert own_endpoint not in _endpoints()  # its own: found by its name, deleted
    assert not (cli_env.state / "sandboxes" / str(info["id"])).exists()
    assert cli_proc("ls", "-a", "--json").json() == []
    system_note, endpoint_note = _warnings(removed)
    assert system_note.startswith(
        "warning: sandbox 'x': its compute system id in the state database is damaged "
        f"(names a compute system not the sandbox's ('{FOREIGN_SYSTEM}'), left alone: "
    )
    assert "so its compute system was looked for by the sandbox's id" in system_note
    assert endpoint_note.startswith(
        "warning: sandbox 'x': its endpoint ids in the state database are damaged "
        f"(names endpoints not the sandbox's ('{FOREIGN_ENDPOINT}'), left alone: "
    )
    assert f"so its endpoints were looked for by their name (hcs-sandbox-{info['id']})" in (
        endpoint_note
    )


@pytest.mark.usefixtures("othertool")
def test_prune_lists_the_edited_ids_as_damage_and_leaves_the_foreign_objects(
    cli_proc: Proc, cli_env: CliEnv
) -> None:
    """A running sandbox whose record names othertool's system: prune took its own system
    for gone (the othertool one is not hcs-sandbox's) and removed it, terminating the
    othertool system on the way (QA F5).  Now it is judged by its own system: live, left
    alone; once killed, removed, and the othertool objects are still there."""
    info = _point_at_othertool(cli_proc, cli_env, "x")
    kept = cli_proc("prune", "-f", "--json")
    assert kept.code == 0, kept.err
    report = kept.json()
    assert (report["records"], report["systems"], report["endpoints"]) == ([], [], [])
    (damaged,) = report["damaged"]
    assert damaged.startswith(f"x ({info['id']}): endpoint_ids (names endpoints not the sandbox's")
    assert _own_system_state(str(info["id"])) == "Running"
    assert _foreign_state() == ("Running", True)

    assert cli_proc("kill", "x").code == 0
    pruned = cli_proc("prune", "-f", "--json")
    assert pruned.code == 0, pruned.err
    report = pruned.json()
    assert report["records"] == [f"x ({info['id']})"]
    assert report["failures"] == []
    assert any("left alone" in note for note in report["notes"])
    assert _foreign_state() == ("Running", True)
    assert cli_proc("ls", "-a", "--json").json() == []


@pytest.fixture
def victims(tmp_path: Path) -> tuple[Path, Path]:
    """A file and a folder (with a file in it) outside the state directory."""
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    folder = tmp_path / "victimdir"
    folder.mkdir()
    (folder / "x.txt").write_text("keep\n")
    return victim, folder


def test_rm_leaves_listed_files_and_folders_outside_the_sandbox_folder(
    cli_proc: Proc, cli_env: CliEnv, victims: tuple[Path, Path]
) -> None:
    """``rm`` deleted a file and a whole folder anywhere on the host that a hand-edited file
    list named (QA F4), through ``..`` too; and through a link in the sandbox's folder.
    Now they are left, said once; the sandbox's own files are still removed."""
    victim, folder = victims
    made = cli_proc("create", "--name", "x")
    assert made.code == 0, made.err
    (x,) = cli_proc("inspect", "x").json()
    own = Path(str(x["directory"]))
    assert own.is_dir()
    assert any(own.iterdir())
    os.symlink(folder, own / "link")
    files = _files(cli_env.state, "x")
    edited = [
        *files,
        str(victim),
        str(folder),
        os.path.join(str(own), "..", "..", "..", victim.name),  # (lexically inside first)
        os.path.join(str(own), "link", "x.txt"),  # through a link in its folder
    ]
    assert os.path.realpath(edited[-2]) == str(victim)
    _set(cli_env.state, "x", "files", json.dumps(edited))

    shown = cli_proc("inspect", "x")
    assert shown.code == 0, shown.err
    (info,) = shown.json()
    assert info["files"] is None
    assert info["damaged"]["files"] == (
        f"names files outside the sandbox's folder ('{victim}' and 2 more), left as they "
        f"are: every file a sandbox owns is in {own}"
    )

    removed = cli_proc("rm", "x")
    assert removed.code == 0, removed.err
    assert victim.read_text() == "keep me\n"
    assert (folder / "x.txt").read_text() == "keep\n"
    assert not own.exists()
    assert not own.is_symlink()
    assert cli_proc("ls", "-a", "--json").json() == []
    (note,) = _warnings(removed)
    assert note == (
        "warning: sandbox 'x': its file list in the state database is damaged (names files "
        f"outside the sandbox's folder ('{victim}' and 2 more), left as they are: every file "
        f"a sandbox owns is in {own}), so its folder was removed (check the files it names "
        "outside its folder: delete one by hand only if you know it is this sandbox's)"
    )


def test_a_file_reached_through_a_link_in_the_folder_is_left_by_rm(
    cli_proc: Proc, cli_env: CliEnv, victims: tuple[Path, Path]
) -> None:
    """A listed file under the sandbox's folder as text, but reached through a symbolic
    link in it (compared without following links, then checked for one): left."""
    _, folder = victims
    assert cli_proc("create", "--name", "x").code == 0
    (x,) = cli_proc("inspect", "x").json()
    own = Path(str(x["directory"]))
    os.symlink(folder, own / "link")
    through = os.path.join(str(own), "link", "x.txt")
    _set(cli_env.state, "x", "files", json.dumps([*_files(cli_env.state, "x"), through]))
    removed = cli_proc("rm", "x")
    assert removed.code == 0, removed.err
    assert (folder / "x.txt").read_text() == "keep\n"
    assert not own.exists()
    assert not own.is_symlink()
    (note,) = _warnings(removed)
    assert f"names files outside the sandbox's folder ('{through}')" in note


def test_prune_leaves_listed_files_outside_the_sandbox_folder(
    cli_proc: Proc, cli_env: CliEnv, victims: tuple[Path, Path]
) -> None:
    """``prune`` removing a sandbox whose system is gone deleted the outside file too
    (QA F4); now it lists the record as damaged, removes it and its folder, and says what
    it left."""
    victim, folder = victims
    assert cli_proc("run", "-d", "--name", "x").code == 0
    (x,) = cli_proc("inspect", "x").json()
    own = Path(str(x["directory"]))
    edited = [*_files(cli_env.state, "x"), str(victim), str(folder)]
    _set(cli_env.state, "x", "files", json.dumps(edited))
    assert cli_proc("kill", "x").code == 0
    pruned = cli_proc("prune", "-f", "--json")
    assert pruned.code == 0, pruned.err
    report = pruned.json()
    assert report["records"] == [f"x ({x['id']})"]
    assert report["damaged"] == [
        f"x ({x['id']}): files (names files outside the sandbox's folder ('{victim}' and 1 "
        f"more), left as they are: every file a sandbox owns is in {own})"
    ]
    (note,) = report["notes"]
    assert note.startswith("sandbox 'x': its file list in the state database is damaged")
    assert victim.read_text() == "keep me\n"
    assert (folder / "x.txt").read_text() == "keep\n"
    assert not own.exists()


@pytest.mark.usefixtures("othertool")
def test_exec_and_start_refuse_a_record_naming_another_tools_system(
    cli_proc: Proc, cli_env: CliEnv
) -> None:
    """``exec`` ran its command in the othertool system (it opened the recorded id), and a
    persistent sandbox's ``start`` made its compute system under that id: both refuse it
    now, as any damaged record, before anything is done; ``rm -f`` is the way out."""
    made = cli_proc("run", "-d", "--name", "x", "--persistent")
    assert made.code == 0, made.err
    (info,) = cli_proc("inspect", "x").json()
    _set(cli_env.state, "x", "system_id", FOREIGN_SYSTEM)
    expected = (
        "its record in the state database is damaged: system_id (names a compute system not "
        f"the sandbox's ('{FOREIGN_SYSTEM}'), left alone: hcs-sandbox gives a sandbox's "
        f"compute system the sandbox's id) (remove the sandbox: hcs-sandbox rm -f {info['id']})"
    )
    ran = cli_proc("exec", "x", "--", "cmd", "/c", "echo", "hi")
    assert ran.code == 1, (ran.out, ran.err)
    assert (
        ran.err_lines[0] == f"hcs-sandbox: error: cannot run a command in sandbox 'x': {expected}"
    )
    assert cli_proc("stop", "x").code == 0  # (its own system, by the sandbox's id)
    assert _own_system_state(str(info["id"])) in (None, "Stopped")
    started = cli_proc("start", "x")
    assert started.code == 1, (started.out, started.err)
    assert started.err_lines[0] == f"hcs-sandbox: error: cannot start sandbox 'x': {expected}"
    assert _foreign_state() == ("Running", True)
    assert cli_proc("rm", "-f", "x").code == 0
    assert _foreign_state() == ("Running", True)
    assert cli_proc("ls", "-a", "--json").json() == []
