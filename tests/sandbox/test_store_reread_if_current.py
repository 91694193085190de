"""``Store.reread_if_current``: ``is_current()`` and then ``reread(known)`` as one call.

None exactly when the store is not current (the caller opens a new one); otherwise what
``reread`` gives: the caller's record itself when nothing was written since, else read
again.  Never a stale record, never a replaced database taken for the same one.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from hcs_sandbox.errors import SandboxNotFoundError
from hcs_sandbox.sandbox.store import Record, Store, close_cached_connections, open_store

SPEC = {"base": "windows"}


@pytest.fixture
def store(tmp_path: Path) -> Store:
    open_store(tmp_path).close()  # makes the database (the first open migrates it)
    return open_store(tmp_path)


def _updated(store: Store, name: str) -> Record:
    rec = store.reserve(name, None, SPEC)
    return store.update(rec.id, state="created", known=rec)


def _selects(store: Store, call: object) -> tuple[object, list[str]]:
    seen: list[str] = []
    store._connection().set_trace_callback(seen.append)
    try:
        got = call()  # type: ignore[operator]
    finally:
        store._connection().set_trace_callback(None)
    return got, [s for s in seen if s.lstrip().upper().startswith("SELECT")]


def test_unchanged_record_is_returned_without_a_read(store: Store) -> None:
    rec = _updated(store, "a")
    assert store.is_current()
    got, selects = _selects(store, lambda: store.reread_if_current(rec))
    assert got is rec
    assert selects == []


def test_a_record_that_is_not_the_last_update_is_read(store: Store) -> None:
    rec = _updated(store, "a")
    copy = store.get(rec.id)
    got, selects = _selects(store, lambda: store.reread_if_current(copy))
    assert got == rec
    assert got is not copy
    assert selects


def test_a_write_by_another_store_of_this_process_is_seen(store: Store) -> None:
    rec = _updated(store, "a")
    Store(store.path).update(rec.id, state="running", merge_extra={"x": 1})
    assert store.is_current()  # the shared connection: data_version does not change
    got = store.reread_if_current(rec)
    assert got is not None
    assert got.state == "running"
    assert got.extra == {"x": 1}


def test_a_delete_by_this_process_is_seen(store: Store) -> None:
    rec = _updated(store, "a")
    Store(store.path).delete(rec.id)
    with pytest.raises(SandboxNotFoundError):
        store.reread_if_current(rec)


def test_a_write_by_another_connection_makes_it_not_current(store: Store) -> None:
    rec = _updated(store, "a")
    conn = sqlite3.connect(store.path)
    try:
        conn.execute("UPDATE sandboxes SET state = 'paused' WHERE id = ?", (rec.id,))
        conn.commit()
    finally:
        conn.close()
    assert not store.is_current()
    assert store.reread_if_current(rec) is None
    assert store.reread(rec).state == "paused"  # what the caller's fallback reads


def test_a_write_by_another_process_makes_it_not_current(store: Store) -> None:
    rec = _updated(store, "a")
    script = (
        "import sys\n"
        "from hcs_sandbox.sandbox.store import Store\n"
        "Store(sys.argv[1]).update(sys.argv[2], state='stopped')\n"
    )
    subprocess.run([sys.executable, "-c", script, str(store.path), rec.id], check=True)
    assert store.reread_if_current(rec) is None
    # A new Store (the schema seen again) is current; the record is read, not taken.
    fresh = Store(store.path)
    got = fresh.reread_if_current(rec)
    assert got is not None
    assert got.state == "stopped"


def test_a_replaced_database_is_not_current(store: Store, tmp_path: Path) -> None:
    rec = _updated(store, "a")
    assert store.reread_if_current(rec) is rec
    other = tmp_path / "other.db"
    sqlite3.connect(other).close()
    os.replace(other, store.path)  # a new file at the same path; the cached connection
    assert store.reread_if_current(rec) is None  # still has the old one: not taken for it
    assert not store.is_current()
    store.path.unlink()
    assert store.reread_if_current(rec) is None  # gone


def test_a_closed_store_or_connection_is_not_current(store: Store) -> None:
    rec = _updated(store, "a")
    close_cached_connections()
    assert store.reread_if_current(rec) is None
    again = open_store(store.path.parent)
    store.close()
    assert store.reread_if_current(rec) is None
    assert again.reread_if_current(rec) == rec
