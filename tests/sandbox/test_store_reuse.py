"""``Store.reuse`` and the sandbox layer's ``_store``: a verb that has just checked the state
directory reuses the process's current connection without checking the folder again; a
database replaced or written by another connection, or a folder gone, is opened (and the
folder checked) as before."""

from __future__ import annotations

import os
import sqlite3
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from hcs_sandbox.sandbox import paths
from hcs_sandbox.sandbox import sandbox as sandbox_mod
from hcs_sandbox.sandbox.sandbox import Sandbox
from hcs_sandbox.sandbox.spec import SandboxSpec
from hcs_sandbox.sandbox.store import Store, close_cached_connections, open_store

if TYPE_CHECKING:
    from conftest import Inspector


def _database(state: Path) -> str:
    return os.path.join(state, paths.DATABASE_NAME)


def _current_store(state: Path) -> Store:
    """A store of ``state`` whose connection is current (a second open after the first one's
    switch to WAL, which changes its data_version)."""
    open_store(state).close()
    store = open_store(state)
    assert store.is_current()
    return store


def _count_folder_checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = paths.ensure_state_dir_text

    def ensure(path: str | os.PathLike[str] | None = None) -> str:
        calls.append(os.fspath(path) if path is not None else "")
        return real(path)

    monkeypatch.setattr(paths, "ensure_state_dir_text", ensure)
    return calls


def test_reuse_gives_a_store_only_while_the_connection_is_current(tmp_path: Path) -> None:
    close_cached_connections()
    assert Store.reuse(_database(tmp_path)) is None  # no connection in this process yet
    first = _current_store(tmp_path)
    reused = Store.reuse(_database(tmp_path))
    assert reused is not None
    assert reused.is_current()
    rec = reused.reserve("r", None, {})
    assert first.get("r") == rec  # the same database, the shared connection
    # Another connection's write: not current, so nothing to reuse.
    other = sqlite3.connect(_database(tmp_path))
    with other:
        other.execute("UPDATE sandboxes SET state = 'error' WHERE id = ?", (rec.id,))
    other.close()
    assert Store.reuse(_database(tmp_path)) is None
    assert open_store(tmp_path).get("r").state == "error"  # an open checks again
    assert Store.reuse(_database(tmp_path)) is not None


def test_reuse_misses_a_replaced_database(tmp_path: Path) -> None:
    _current_store(tmp_path)
    for suffix in ("", "-wal", "-shm"):
        Path(_database(tmp_path) + suffix).unlink(missing_ok=True)
    assert Store.reuse(_database(tmp_path)) is None  # the file is gone
    assert open_store(tmp_path).list() == []


def test_reuse_misses_the_connection_of_a_closed_cache(tmp_path: Path) -> None:
    _current_store(tmp_path)
    close_cached_connections()
    assert Store.reuse(_database(tmp_path)) is None


def test_store_reuses_a_current_connection_without_checking_the_folder_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = paths.ensure_state_dir(tmp_path / "state")
    _current_store(state)
    checks = _count_folder_checks(monkeypatch)
    store = sandbox_mod._store(state)
    assert checks == []
    assert store.is_current()
    # Not current (another connection wrote): opened as before, the folder checked.
    other = sqlite3.connect(_database(state))
    with other:
        other.execute("INSERT INTO meta (key, value) VALUES ('x', 'y')")
    other.close()
    sandbox_mod._store(state)
    assert len(checks) == 1
    # checked=False (a Sandbox object's later verbs): the folder is always checked.
    sandbox_mod._store(state, checked=False)
    assert len(checks) == 2


def test_store_makes_a_deleted_state_directory_again(tmp_path: Path) -> None:
    state = paths.ensure_state_dir(tmp_path / "state")
    _current_store(state)
    for name in os.listdir(state):
        os.unlink(os.path.join(state, name))
    os.rmdir(state)
    store = sandbox_mod._store(state)  # not current (the file is gone): open_store
    assert state.is_dir()
    assert store.list() == []


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX modes")
def test_a_sandbox_object_opens_its_store_with_the_folder_checked(world: Inspector) -> None:
    """An object without a store yet (from list) opens one at its first verb with the folder
    checked (a mode opened meanwhile is closed again), as before: the folder was checked
    when the object was made, maybe long ago."""
    Sandbox.create(SandboxSpec(name="first")).remove()
    Sandbox.create(SandboxSpec(name="later"))
    [sb] = Sandbox.list(all=True)
    os.chmod(world.state, 0o755)
    sb.start()
    assert os.stat(world.state).st_mode & 0o777 == 0o700
    sb.stop(timeout=5)
    sb.remove()
    world.assert_nothing_left()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX modes")
def test_a_sandbox_object_whose_store_is_stale_checks_the_folder(world: Inspector) -> None:
    Sandbox.create(SandboxSpec(name="first")).remove()
    sb = Sandbox.create(SandboxSpec(name="later"))
    os.chmod(world.state, 0o755)
    other = sqlite3.connect(_database(world.state))
    with other:
        other.execute("INSERT INTO meta (key, value) VALUES ('x', 'y')")
    other.close()
    sb.start()
    assert os.stat(world.state).st_mode & 0o777 == 0o700
    sb.stop(timeout=5)
    sb.remove()
    world.assert_nothing_left()
