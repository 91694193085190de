"""The store's per-(process, database) connection cache and batched writes."""

from __future__ import annotations

import os
import sqlite3
import sys
import threading
import time
from pathlib import Path

import pytest

from hcs_sandbox.sandbox import store as store_mod
from hcs_sandbox.sandbox.store import Store, close_cached_connections, open_store


def test_stores_of_one_database_share_the_process_connection(tmp_path: Path) -> None:
    with open_store(tmp_path) as a, open_store(tmp_path) as b:
        assert a._connection() is b._connection()
        seen: list[sqlite3.Connection] = []
        t = threading.Thread(target=lambda: seen.append(a._connection()))
        t.start()
        t.join()
        assert seen[0] is a._connection()  # every thread of the process: the same one


def test_threads_take_turns_on_the_shared_connection(tmp_path: Path) -> None:
    """A write transaction holds the connection: another thread's statements wait for its
    COMMIT instead of joining the transaction."""
    with open_store(tmp_path) as s:
        first = s.reserve("first", None, {})
        inside = threading.Event()
        release = threading.Event()
        seen: list[list[str]] = []

        def body(entry: store_mod._Cached) -> None:
            conn = entry.conn
            conn.execute("UPDATE sandboxes SET state = 'running' WHERE id = ?", (first.id,))
            inside.set()
            release.wait(5)
            conn.execute("UPDATE sandboxes SET state = 'stopped' WHERE id = ?", (first.id,))

        def writer() -> None:
            s._write("test", body)

        def reader() -> None:
            seen.append([r.state for r in s.list()])

        w = threading.Thread(target=writer)
        w.start()
        assert inside.wait(5)
        r = threading.Thread(target=reader)
        r.start()
        r.join(0.2)
        assert r.is_alive()  # waiting for the writer's transaction, not reading inside it
        release.set()
        w.join(5)
        r.join(5)
        assert seen == [["stopped"]]  # the committed state, never the half-done 'running'


def test_many_threads_write_without_losing_a_record(tmp_path: Path) -> None:
    with open_store(tmp_path) as s:
        errors: list[BaseException] = []

        def make(i: int) -> None:
            try:
                rec = s.reserve(f"t{i}", None, {})
                for state in ("created", "running", "stopped"):
                    rec = s.update(rec.id, expect_state=rec.state, state=state)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=make, args=(i,)) for i in range(30)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert errors == []
        records = s.list()
        assert len(records) == 30
        assert {r.state for r in records} == {"stopped"}
        assert {r.revision for r in records} == {4}
        assert s.integrity_check() == "ok"


def test_pragmas_are_normal_sync_and_wal(tmp_path: Path) -> None:
    with open_store(tmp_path) as s:
        conn = s._connection()
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_replaced_database_is_reopened(tmp_path: Path) -> None:
    with open_store(tmp_path) as s:
        s.reserve("old", None, {})
        path = s.path
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    with open_store(tmp_path) as s:
        assert s.list() == []
        s.reserve("new", None, {})
        assert [r.name for r in s.list()] == ["new"]


def test_a_closed_store_does_not_close_the_shared_connection(tmp_path: Path) -> None:
    a = open_store(tmp_path)
    with open_store(tmp_path) as b:
        a.close()
        b.reserve("x", None, {})
        assert [r.name for r in b.list()] == ["x"]
    close_cached_connections()
    with open_store(tmp_path) as c:  # reopens after the cache was emptied
        assert [r.name for r in c.list()] == ["x"]


def test_the_cache_is_bounded(tmp_path: Path) -> None:
    close_cached_connections()
    for i in range(store_mod._CACHE_SIZE + 5):
        (tmp_path / str(i)).mkdir()
        Store(tmp_path / str(i) / "state.db").close()
    assert len(store_mod._cache()) == store_mod._CACHE_SIZE


def test_add_and_remove_resources_are_one_transaction_each(tmp_path: Path) -> None:
    with open_store(tmp_path) as s:
        rec = s.reserve("r", None, {})
        conn = s._connection()
        before = conn.total_changes
        rec = s.add_resources(
            rec.id, files=["/c/a", "/c/b"], endpoint_ids=["0e1e0e1e-0000-4000-8000-0000000000e1"]
        )
        assert conn.total_changes == before + 1  # one UPDATE
        assert rec.files == ("/c/a", "/c/b")
        assert rec.endpoint_ids == ("0e1e0e1e-0000-4000-8000-0000000000e1",)
        assert rec.revision == 2
        again = s.add_resources(rec.id, files=["/c/a"])  # idempotent: no write
        assert again.revision == 2
        rec = s.remove_resources(
            rec.id,
            files=["/c/b", "/c/missing"],
            endpoint_ids=["0e1e0e1e-0000-4000-8000-0000000000e1"],
        )
        assert rec.files == ("/c/a",)
        assert rec.endpoint_ids == ()
        assert rec.revision == 3


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() is POSIX only")
def test_a_forked_child_opens_its_own_connection(tmp_path: Path) -> None:
    with open_store(tmp_path) as s:
        s.reserve("parent", None, {})
        parent_conn = s._connection()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            code = 1
            try:
                with open_store(tmp_path) as child:
                    ok = child._connection() is not parent_conn
                    child.reserve("child", None, {})
                    code = 0 if ok else 2
            finally:
                os._exit(code)
        _pid, status = os.waitpid(pid, 0)
        assert os.WEXITSTATUS(status) == 0
        assert sorted(r.name for r in s.list()) == ["child", "parent"]
        assert s.integrity_check() == "ok"
        assert sys.platform != "win32"


def test_a_write_block_that_raises_rolls_back_and_frees_the_connection(tmp_path: Path) -> None:
    from hcs_sandbox.errors import StoreError

    with open_store(tmp_path) as s:
        rec = s.reserve("w", None, {})

        def half_done(entry: store_mod._Cached) -> None:
            entry.conn.execute("UPDATE sandboxes SET state = 'running' WHERE id = ?", (rec.id,))
            raise KeyError("boom")

        with pytest.raises(KeyError):
            s._write("test", half_done)
        assert s.get(rec.id).state == "creating"  # rolled back
        with pytest.raises(StoreError, match="cannot test the state database"):
            s._write("test", lambda entry: entry.conn.execute("SELECT * FROM no_such_table"))
        # The lock was released both times: another thread can write at once.
        done: list[str] = []
        t = threading.Thread(target=lambda: done.append(s.update(rec.id, state="created").state))
        t.start()
        t.join(5)
        assert done == ["created"]


def test_closing_the_cache_never_breaks_a_thread_using_it(tmp_path: Path) -> None:
    """close_cached_connections() (or an eviction) while other threads read and write:
    a waiting thread takes the current connection, never a closed one."""
    with open_store(tmp_path) as s:
        rec = s.reserve("a", None, {})
    failures: list[str] = []
    stop = threading.Event()

    def worker() -> None:
        store = Store(tmp_path / "state.db")
        while not stop.is_set():
            try:
                store.update(rec.id, labels={"t": "x"})
                store.get("a")
                Store(tmp_path / "state.db")
            except Exception as exc:  # pragma: no cover - reported below
                failures.append(repr(exc))

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        close_cached_connections()
        time.sleep(0.001)
    stop.set()
    for t in threads:
        t.join(10)
    assert failures == []


def test_a_reader_does_not_wait_for_another_process_writer(tmp_path: Path) -> None:
    """A thread waiting for another process's write lock does not hold this process's
    connection: the other threads read meanwhile (WAL readers never wait for a writer)."""
    import subprocess

    with open_store(tmp_path) as s:
        rec = s.reserve("a", None, {})
        db = str(tmp_path / "state.db")
        holder = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sqlite3, sys, time\n"
                f"c = sqlite3.connect({db!r}, isolation_level=None)\n"
                "c.execute('BEGIN IMMEDIATE'); print('held', flush=True)\n"
                "time.sleep(1.5); c.execute('COMMIT')\n",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert holder.stdout is not None
            assert holder.stdout.readline().strip() == "held"
            writer = threading.Thread(target=lambda: s.update(rec.id, labels={"k": "v"}))
            writer.start()
            time.sleep(0.2)  # the writer is now waiting for the other process
            t0 = time.monotonic()
            assert s.get("a").labels == {}
            assert time.monotonic() - t0 < 0.5
            writer.join(10)
            assert s.get("a").labels == {"k": "v"}  # and the write went through after
        finally:
            holder.wait(10)


def test_a_transaction_left_open_by_an_interrupt_is_rolled_back(tmp_path: Path) -> None:
    """A transaction left open on the shared connection with no block using it (depth 0:
    what an interrupt between a BEGIN and the block's exit can leave): the next user rolls
    it back instead of failing or seeing its writes.  (Made by hand here: the block's own
    exit now rolls back with no handler point before it, review RV66.)"""
    with open_store(tmp_path) as s:
        rec = s.reserve("a", None, {})
        conn = s._connection()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("UPDATE sandboxes SET state = 'running' WHERE id = ?", (rec.id,))
        assert s._connection().in_transaction  # left open...
        seen: list[str] = []
        t = threading.Thread(target=lambda: seen.append(s.update(rec.id, state="stopped").state))
        t.start()
        t.join(10)
        assert seen == ["stopped"]  # ...rolled back by the next user, whose write works
        assert s.get(rec.id).revision == 2  # the interrupted write is gone


def test_update_returns_what_a_read_gives(tmp_path: Path) -> None:
    """update() builds the new record without reading it back: it must equal a read."""
    from hcs_sandbox.errors import StoreError

    with open_store(tmp_path) as s:
        rec = s.reserve("u", None, {"a": [1, 2]}, labels={"k": "v"})
        for fields in (
            {"state": "created"},
            {"labels": {"x": "y"}, "persistent": True},
            {"spec": {"b": {"c": None}}, "started_at": 12.5},
            {"owner_pid": 4242, "owner_host": "h"},
            {"owner_pid": None, "owner_host": None},
            {"files": ["/c/x"], "endpoint_ids": ["0e1e0e1e-0000-4000-8000-0000000000e1"]},
        ):
            rec = s.update(rec.id, **fields)
            assert rec == s.get(rec.id)
        rec = s.update(rec.id, merge_extra={"ip": "10.0.0.2", "gone": None})
        assert rec == s.get(rec.id)
        for bad in ({"owner_pid": "12"}, {"owner_pid": 2**70}, {"owner_host": 5}):
            with pytest.raises(StoreError):
                s.update(rec.id, **bad)


def test_is_current_until_another_connection_writes(tmp_path: Path) -> None:
    """``Store.is_current``: what a holder of a Store (a Sandbox) asks before each use."""
    open_store(tmp_path).close()  # makes the database (the first open migrates it)
    s = open_store(tmp_path)
    assert s.is_current()
    s.reserve("mine", None, {})
    assert s.is_current()  # this connection's own writes keep it current
    other = sqlite3.connect(s.path)  # another connection (as another process would be)
    try:
        other.execute("UPDATE sandboxes SET state = 'running'")
        other.commit()
    finally:
        other.close()
    assert not s.is_current()  # someone else wrote: open a new Store (checks the schema)
    again = open_store(tmp_path)
    assert again.is_current()  # the new one saw the schema again
    assert s.is_current()
    s.close()
    assert not s.is_current()  # a closed Store is never current


def test_is_current_is_false_for_a_replaced_database(tmp_path: Path) -> None:
    open_store(tmp_path).close()  # makes the database (the first open migrates it)
    s = open_store(tmp_path)
    s.reserve("old", None, {})
    assert s.is_current()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{s.path}{suffix}").unlink(missing_ok=True)
    assert not s.is_current()  # the file is gone: the cached connection is stale
    with open_store(tmp_path) as fresh:
        assert fresh.list() == []


def test_reserve_returns_what_a_read_gives(tmp_path: Path) -> None:
    """reserve() builds the new record without reading it back: it must equal a read."""
    with open_store(tmp_path) as s:
        for kwargs in (
            {},
            {"labels": {"k": "v"}, "persistent": True, "extra": {"a": [1, {"b": None}]}},
            {
                "files": ["/x/y", "/c/z"],
                "endpoint_ids": ["0e1e0e1e-0000-4000-8000-0000000000e1"],
                "state": "created",
            },
            {
                "system_id": "5A1D0C3E-7B2F-4E6A-9C8D-0F1E2D3C4B5A",
                "owner_pid": 0,
                "owner_host": "",
                "kind": "template",
            },
        ):
            rec = s.reserve(None, None, {"spec": [1, 2.5, "x"]}, **kwargs)
            assert rec == s.get(rec.id)
            assert rec.spec is not s.get(rec.id).spec  # fresh objects, as a read gives
        # A given id (any GUID form), a given name, empty and non-empty lists.
        given = "8F0E3C7A-1B2C-4D5E-9F60-718293A4B5C6"
        rec = s.reserve(
            "given",
            given,
            None,
            files=(),
            endpoint_ids=(
                "0e1e0e1e-0000-4000-8000-0000000000e1",
                "0e2e0e2e-0000-4000-8000-0000000000e2",
            ),
        )
        assert rec.id == given.lower()
        assert rec == s.get("given")
        # The stored text is the compact JSON of each column, the empty list too.
        row = s._read(
            "SELECT spec, files, endpoint_ids, labels, extra, started_at, revision "
            "FROM sandboxes WHERE id = ?",
            (rec.id,),
        )[0]
        assert row == (
            "{}",
            "[]",
            '["0e1e0e1e-0000-4000-8000-0000000000e1","0e2e0e2e-0000-4000-8000-0000000000e2"]',
            "{}",
            "{}",
            None,
            1,
        )


def test_delete_checks_the_state_and_absence(tmp_path: Path) -> None:
    from hcs_sandbox.errors import SandboxNotFoundError, StateConflictError

    with open_store(tmp_path) as s:
        rec = s.reserve("d", None, {}, state="stopped")
        with pytest.raises(StateConflictError) as info:
            s.delete(rec.id, expect_state=("running", "paused"))
        assert info.value.actual == "stopped"
        assert "sandbox 'd' is 'stopped'" in str(info.value)
        assert s.get(rec.id) == rec
        s.delete(rec.id.upper(), expect_state="stopped")  # any GUID form
        with pytest.raises(SandboxNotFoundError):
            s.delete(rec.id)
        s.delete(rec.id, missing_ok=True)


def test_a_write_whose_transaction_ended_inside_its_block_fails(tmp_path: Path) -> None:
    """The end of a write commits with ``Connection.commit`` (one GIL release instead of a
    cursor's five), which does nothing outside a transaction: a block that swallowed an
    error which had already ended the transaction (here ``OR ROLLBACK``; sqlite does the same
    by itself on SQLITE_FULL or an I/O error) must still fail, as ``COMMIT`` did, instead of
    reporting a write that never happened."""
    import contextlib

    from hcs_sandbox.errors import StoreError

    with open_store(tmp_path) as s:
        rec = s.reserve("one", None, {})
        ended: list[bool] = []

        def swallowing(entry: store_mod._Cached) -> None:
            c = entry.conn
            c.execute("UPDATE sandboxes SET state = 'running' WHERE id = ?", (rec.id,))
            with contextlib.suppress(sqlite3.IntegrityError):
                c.execute(
                    "INSERT OR ROLLBACK INTO sandboxes SELECT * FROM sandboxes WHERE id = ?",
                    (rec.id,),
                )
            ended.append(not c.in_transaction)  # the refused INSERT rolled it all back

        with pytest.raises(StoreError, match="no transaction is active"):
            s._write("update", swallowing)
        assert ended == [True]
        assert s.get(rec.id).state == "creating"
        assert s.update(rec.id, state="running").state == "running"  # the store still works


def test_a_nested_write_fails_without_committing_its_callers_transaction(
    tmp_path: Path,
) -> None:
    """A write begins with ``executescript("BEGIN IMMEDIATE")`` (one GIL release instead of
    a cursor's five), and executescript COMMITs a pending transaction first: a write inside
    another write (the connection's lock is re-entrant) must still fail as ``BEGIN`` does
    there, leaving the outer transaction to roll back, not commit its half-done work."""
    from hcs_sandbox.errors import StoreError

    with open_store(tmp_path) as s:
        rec = s.reserve("one", None, {})

        def never(entry: store_mod._Cached) -> None:  # pragma: no cover - never reached
            pass

        def nested(entry: store_mod._Cached) -> None:
            entry.conn.execute("UPDATE sandboxes SET state = 'running' WHERE id = ?", (rec.id,))
            s._write("update", never)

        with pytest.raises(StoreError, match="within a transaction"):
            s._write("update", nested)
        assert s.get(rec.id).state == "creating"  # the outer UPDATE was never committed
        assert not s._connection().in_transaction
        assert s.update(rec.id, state="running").state == "running"


def _another_connection_can_write(path: Path) -> None:
    """sqlite's write lock is free: another connection (another process's) can begin a
    write at once."""
    other = sqlite3.connect(path, timeout=0.1, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
    finally:
        other.close()


def test_a_ctrl_c_as_begin_returns_leaves_no_write_lock_behind(tmp_path: Path) -> None:
    """A Ctrl+C that lands as ``BEGIN IMMEDIATE`` returns (KeyboardInterrupt raised after
    the statement took sqlite's write lock) must roll the transaction back before this
    process's lock is released: otherwise the database stays write-locked for every other
    process until this one happens to use the store again (review RV64 F2)."""
    with open_store(tmp_path) as s:
        rec = s.reserve("one", None, {})
        entry = s._entry()
        real = entry.cursor

        class Interrupted:
            """The cursor, whose executescript is interrupted right after it ran."""

            def executescript(self, sql: str) -> sqlite3.Cursor:
                real.executescript(sql)
                raise KeyboardInterrupt

            def __getattr__(self, name: str) -> object:
                return getattr(real, name)

        entry.cursor = Interrupted()  # type: ignore[assignment]
        try:
            with pytest.raises(KeyboardInterrupt):
                s.update(rec.id, state="running")
        finally:
            entry.cursor = real
        assert not entry.conn.in_transaction  # rolled back, not left holding the lock
        _another_connection_can_write(s.path)
        assert entry.lock.acquire(False)  # and this process's lock is free
        entry.lock.release()
        assert s.update(rec.id, state="running").state == "running"


def test_a_ctrl_c_as_a_failed_write_rolls_back_leaves_no_write_lock_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write whose block failed is rolled back by the block's exit.  A Ctrl+C there, at
    the entry of a Python function it called for the ROLLBACK (where CPython runs signal
    handlers), left the transaction open after the lock was released: sqlite's write lock
    held for every other process until this one next used the store (review RV66).  The
    exit now rolls back with no Python call before it."""
    with open_store(tmp_path) as s:
        rec = s.reserve("one", None, {})

        def interrupted(conn: sqlite3.Connection) -> None:
            raise KeyboardInterrupt  # as at the function's first instruction

        def failed_write(entry: store_mod._Cached) -> None:
            entry.conn.execute("UPDATE sandboxes SET state = 'running' WHERE id = ?", (rec.id,))
            raise RuntimeError("the block failed")

        monkeypatch.setattr(store_mod, "_rollback_quietly", interrupted)
        with pytest.raises((RuntimeError, KeyboardInterrupt)):
            s._write("update", failed_write)
        monkeypatch.undo()
        entry = s._entry()
        assert not entry.conn.in_transaction
        assert not entry.writing
        _another_connection_can_write(s.path)
        assert s.get(rec.id).state == "creating"  # the failed block's UPDATE was undone
