"""``Store.reread``: the caller's record itself when nothing was written since, else read.

It must never return a stale record: every writer that can change the record -- this
store, another Store or thread of this process (the same shared connection), another
connection, another process -- makes it read again.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from hcs_sandbox.errors import SandboxNotFoundError, StateConflictError, StoreError
from hcs_sandbox.sandbox.store import Record, Store, close_cached_connections, open_store

SPEC = {"base": "windows"}


@pytest.fixture
def store(tmp_path: Path) -> Store:
    open_store(tmp_path).close()  # makes the database (the first open migrates it)
    return open_store(tmp_path)


def _reads(store: Store) -> list[str]:
    """The SELECT statements run on the shared connection from now on."""
    seen: list[str] = []
    store._connection().set_trace_callback(seen.append)
    return seen


def _selects(seen: list[str]) -> list[str]:
    return [s for s in seen if s.lstrip().upper().startswith("SELECT")]


def _updated(store: Store, name: str) -> Record:
    rec = store.reserve(name, None, SPEC)
    return store.update(rec.id, state="created", known=rec)


def test_unchanged_record_is_returned_without_a_read(store: Store) -> None:
    rec = _updated(store, "a")
    seen = _reads(store)
    try:
        assert store.reread(rec) is rec
    finally:
        store._connection().set_trace_callback(None)
    assert _selects(seen) == []
    assert rec == store.get(rec.id)


def test_a_record_that_is_not_the_last_update_is_read(store: Store) -> None:
    rec = _updated(store, "a")
    copy = store.get(rec.id)  # equal, but not the object the update returned
    seen = _reads(store)
    try:
        again = store.reread(copy)
    finally:
        store._connection().set_trace_callback(None)
    assert again == rec
    assert again is not copy
    assert _selects(seen)
    # A store that never updated reads too.
    fresh = Store(store.path)
    assert fresh.reread(rec) == rec


def test_a_write_by_another_store_of_this_process_is_seen(store: Store) -> None:
    rec = _updated(store, "a")
    other = Store(store.path)  # the same cached connection: data_version does not change
    other.update(rec.id, state="running", merge_extra={"x": 1})
    got = store.reread(rec)
    assert got.state == "running"
    assert got.extra == {"x": 1}
    assert got == store.get(rec.id)


def test_a_write_of_another_record_by_this_process_makes_it_read(store: Store) -> None:
    rec = _updated(store, "a")
    other = Store(store.path)
    other.reserve("b", None, SPEC)  # another record: conservative, read again
    seen = _reads(store)
    try:
        assert store.reread(rec) == rec
    finally:
        store._connection().set_trace_callback(None)
    assert _selects(seen)


def test_a_write_by_another_thread_is_seen(store: Store) -> None:
    rec = _updated(store, "a")

    def write() -> None:
        store.update(rec.id, state="running")

    t = threading.Thread(target=write)
    t.start()
    t.join()
    # The thread's update returned a newer record (now the store's last): ``rec`` is stale.
    assert store.reread(rec).state == "running"


def test_a_delete_by_this_process_is_seen(store: Store) -> None:
    rec = _updated(store, "a")
    Store(store.path).delete(rec.id)
    with pytest.raises(SandboxNotFoundError):
        store.reread(rec)


def test_a_write_by_another_connection_is_seen(store: Store) -> None:
    rec = _updated(store, "a")
    conn = sqlite3.connect(store.path)
    try:
        conn.execute("UPDATE sandboxes SET state = 'paused' WHERE id = ?", (rec.id,))
        conn.commit()
    finally:
        conn.close()
    assert store.reread(rec).state == "paused"


def test_a_write_by_another_process_is_seen(store: Store) -> None:
    rec = _updated(store, "a")
    script = (
        "import sys\n"
        "from hcs_sandbox.sandbox.store import Store\n"
        "Store(sys.argv[1]).update(sys.argv[2], state='stopped', merge_extra={'by': 'child'})\n"
    )
    subprocess.run([sys.executable, "-c", script, str(store.path), rec.id], check=True)
    got = store.reread(rec)
    assert got.state == "stopped"
    assert got.extra == {"by": "child"}
    # Even though a new Store since (it saw the schema again) makes the store current.
    assert Store(store.path).is_current()
    assert store.reread(rec) == got


def test_a_new_connection_makes_it_read(store: Store) -> None:
    rec = _updated(store, "a")
    close_cached_connections()  # the next use opens a new connection (total_changes 0)
    seen = _reads(store)
    try:
        assert store.reread(rec) == rec
    finally:
        store._connection().set_trace_callback(None)
    assert _selects(seen)


def test_a_failed_update_leaves_the_last_record(store: Store) -> None:
    rec = _updated(store, "a")
    with pytest.raises(StateConflictError):
        store.update(rec.id, expect_state="running", state="stopped")
    assert store.reread(rec) is rec


# -- the write path's shortcuts: same results as the general path ---------------------------


def test_update_with_a_known_record_and_its_id_in_another_form(store: Store) -> None:
    rec = store.reserve("k", None, SPEC)
    seen = _reads(store)
    try:
        new = store.update(rec.id.upper(), state="created", known=rec)
    finally:
        store._connection().set_trace_callback(None)
    assert _selects(seen) == []  # the same id: ``known`` was used
    assert new == store.get(rec.id)
    assert new.state == "created"


def test_stored_json_is_what_json_dumps_gives(store: Store) -> None:
    import json

    extra = {"é": "ü\u2603", "n": [1, 2.5, None, True], "d": {"x": {}}}
    rec = store.reserve("j", None, {"base": "w", "ports": [[1, 2]]}, extra=extra)
    rec = store.update(rec.id, merge_extra={"more": "\U0001f600"}, known=rec)
    row = (
        store._connection()
        .execute("SELECT spec, extra FROM sandboxes WHERE id = ?", (rec.id,))
        .fetchone()
    )
    dumps = {"separators": (",", ":"), "allow_nan": False}
    assert row[0] == json.dumps({"base": "w", "ports": [[1, 2]]}, **dumps)  # type: ignore[arg-type]
    assert row[1] == json.dumps({**extra, "more": "\U0001f600"}, **dumps)  # type: ignore[arg-type]
    assert rec == store.get(rec.id)
    for bad in (float("nan"), float("inf"), object()):
        with pytest.raises(StoreError, match="not JSON-serialisable"):
            store.update(rec.id, merge_extra={"bad": bad})
    with pytest.raises(StoreError, match="unknown record field"):
        store.update(rec.id, colour="red")
