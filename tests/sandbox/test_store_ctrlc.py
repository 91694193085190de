"""A Ctrl+C at every point of a store write (review RV66 F1).

A write used to be a context manager: a KeyboardInterrupt at the first instruction of its
``__exit__`` (a Python function's entry, where CPython runs a pending signal handler) skipped
the whole exit, leaving this process's connection lock held and the transaction open (and so
sqlite's write lock, for every other process).  Every write now runs in one frame
(``Store._write``) whose nested ``try``/``finally`` rolls back and releases the lock.

These tests raise one KeyboardInterrupt per run at the n-th point of the write (n = 1, 2,
... until the write returns undisturbed) and check, after each: no transaction open, this
process's lock free (another thread writes), sqlite's write lock free (another connection,
as another process, begins a write at once), the store still writes from this thread, and
the write either fully made or not at all.
"""

from __future__ import annotations

import _weakrefset
import dis
import sqlite3
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ctrlc_trace import InterruptAt
from hcs_sandbox.errors import StateConflictError
from hcs_sandbox.sandbox.store import (
    MIGRATIONS,
    Record,
    Store,
    close_cached_connections,
    open_store,
)


def _interrupt_at(n: int, every: tuple[Any, frozenset[int]] | None) -> InterruptAt:
    """A KeyboardInterrupt at the ``n``-th point of the ``with`` block, in this test module's
    frames not counted (``tests/ctrlc_trace.py``), nor those of the weak-reference callbacks
    the garbage collector may run in the middle of any of them (``WeakSet._remove``: where
    a collection happens is timing, not the write's; counted, one made a sweep fail now and
    then).  With ``every`` the instructions of ``every[0]`` (a code object) at the offsets
    ``every[1]`` are points too."""
    code, offsets = every if every else (None, frozenset())
    return InterruptAt(
        n,
        every=lambda frame: frame.f_code is code and frame.f_lasti in offsets,
        skip_files=(__file__, _weakrefset.__file__, weakref.__file__),
    )


def _write_sweep() -> tuple[Any, frozenset[int]]:
    """``Store._write``'s code and the offsets of its instructions before its clean-up: from
    its entry to the end of its ``try`` body and ``except`` handler, where the first offset
    that no exception-table entry covers begins the ``finally`` clause's copy for the normal
    path (CPython 3.11+).  The clean-up's instructions are not points of the every-instruction
    sweep: no Python code can release a lock if interrupted before the call that releases
    it; CPython runs no handler there but after its calls, which are points in both sweeps.
    (A ``_write`` with no ``try``, main's before this test: every instruction.)"""
    code = Store._write.__code__
    offsets = [i.offset for i in dis.get_instructions(code)]
    covered = {
        offset
        for entry in getattr(dis.Bytecode(code), "exception_entries", ())
        for offset in range(entry.start, entry.end, 2)
    }
    if covered:
        first = min(covered)
        end = min(o for o in offsets if o > first and o not in covered)
        offsets = [o for o in offsets if o < end]
    return code, frozenset(offsets)


def _other_thread_writes(store: Store, record_id: str) -> bool:
    """This process's connection lock is free: another thread writes within a second."""
    done: list[bool] = []
    probe = Store(store.path, timeout=1.0)

    def write() -> None:
        try:
            done.append(probe.add_log_line(record_id, "other thread"))
        except Exception:  # (a StoreError: the lock was not free within the second)
            done.append(False)

    thread = threading.Thread(target=write)
    thread.start()
    thread.join(10)
    return done == [True]


def _other_connection_writes(path: Path) -> bool:
    """sqlite's write lock is free: another connection (as another process) begins a write at
    once."""
    import sqlite3

    other = sqlite3.connect(path, timeout=0.1, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        other.close()


def _another_process_writes(path: Path, record_id: str) -> None:
    code = (
        "import sys; from hcs_sandbox.sandbox.store import Store; "
        "assert Store(sys.argv[1], timeout=2.0).add_log_line(sys.argv[2], 'other process')"
    )
    subprocess.run([sys.executable, "-c", code, str(path), record_id], check=True, timeout=60)


# Each operation: (make: the record(s) it needs, before the interrupt; run: the write;
# outcome: "done" / "not done" from the database afterwards, or a description of a half
# state).  ``rec`` is a fresh record per run.


def _log(store: Store, rec: Record) -> list[str]:
    return [line for _t, line in store.log_lines(rec.id)]


def _update_outcome(store: Store, rec: Record, n: int) -> str:
    now = store.get(rec.id)
    fields = (now.state, dict(now.labels), now.revision, _log(store, rec))
    if fields == ("creating", {}, 1, []):
        return "not done"
    if fields == ("running", {"n": str(n)}, 2, [f"line {n}"]):
        return "done"
    return f"half done: {fields}"


def _reserve_outcome(store: Store, rec: Record, n: int) -> str:
    found = [r for r in store.list() if r.name == f"new-{n}"]
    if not found:
        return "not done"
    if len(found) == 1 and found[0].spec == {"n": n} and found[0].labels == {"n": str(n)}:
        return "done"
    return f"half done: {found}"


def _delete_outcome(store: Store, rec: Record, n: int) -> str:
    found = [r for r in store.list() if r.id == rec.id]
    if not found:
        return "done"
    return "not done" if found == [rec] else f"half done: {found}"


def _log_outcome(store: Store, rec: Record, n: int) -> str:
    lines = _log(store, rec)
    return {(): "not done", (f"line {n}",): "done"}.get(tuple(lines), f"half done: {lines}")


def _refused_update(store: Store, rec: Record, n: int) -> None:
    """An update that fails on its own (the record is not in the expected state): its
    transaction is rolled back by ``_write``'s clean-up, whose ROLLBACK branch runs only
    then (review RV67 F2)."""
    try:
        store.update(
            rec.id,
            state="running",
            labels={"n": str(n)},
            log_line=f"line {n}",
            expect_state="stopped",
        )
    except StateConflictError:
        return
    raise AssertionError("the update was not refused")


# What the write leaves when it runs undisturbed.
_FINAL = {"update-refused": "not done"}

_OPERATIONS: dict[str, tuple[Callable[[Store, Record, int], object], Callable[..., str]]] = {
    "update": (
        lambda s, rec, n: s.update(
            rec.id, state="running", labels={"n": str(n)}, log_line=f"line {n}"
        ),
        _update_outcome,
    ),
    "update-known": (
        lambda s, rec, n: s.update(
            rec.id, state="running", labels={"n": str(n)}, log_line=f"line {n}", known=rec
        ),
        _update_outcome,
    ),
    "reserve": (
        lambda s, rec, n: s.reserve(f"new-{n}", None, {"n": n}, labels={"n": str(n)}),
        _reserve_outcome,
    ),
    "delete": (lambda s, rec, n: s.delete(rec.id, expect_state="creating"), _delete_outcome),
    "add_log_line": (lambda s, rec, n: s.add_log_line(rec.id, f"line {n}"), _log_outcome),
    "update-refused": (_refused_update, _update_outcome),
}


@pytest.mark.parametrize("every", [False, True], ids=["handler-points", "every-instruction"])
@pytest.mark.parametrize("operation", sorted(_OPERATIONS))
def test_a_ctrl_c_anywhere_in_a_write_leaves_no_transaction_nor_lock_behind(
    tmp_path: Path, operation: str, every: bool
) -> None:
    """A KeyboardInterrupt at any point of a write (once per point, one point per run: every
    handler point of every frame the write runs, and with ``every-instruction`` each
    instruction of ``Store._write`` before its clean-up too) leaves no transaction open,
    this process's lock free, sqlite's write lock free, and the write done wholly or not at
    all (RV66 F1: one at the entry of the context manager's ``__exit__`` left the
    transaction open and the lock held, and every later write of the process failed)."""
    run, outcome = _OPERATIONS[operation]
    sweep = _write_sweep() if every else None
    close_cached_connections()
    with open_store(tmp_path) as store:
        witness = store.reserve("witness", None, {})
        warm = store.reserve("warm", None, {})
        run(store, warm, 0)  # (warm: lazy imports and statements; every run the same path)
        failures: list[str] = []
        outcomes: set[str] = set()
        n = 0
        while True:
            n += 1
            rec = store.reserve(f"rec-{n}", None, {})
            with _interrupt_at(n, sweep) as at:
                try:
                    run(store, rec, n)
                except KeyboardInterrupt:
                    pass
            if at.where is None:  # past the last point: the write ran undisturbed
                assert at.count == n - 1 > 0
                assert outcome(store, rec, n) == _FINAL.get(operation, "done")
                break
            entry = store._entry()
            problems = []
            if entry.conn.in_transaction:
                problems.append("transaction open")
            if not _other_connection_writes(store.path):
                problems.append("sqlite's write lock held")
            if not _other_thread_writes(store, witness.id):
                problems.append("this process's lock held")
            try:
                store.add_log_line(witness.id, f"after {n}")
            except Exception as exc:  # (a StoreError: "within a transaction")
                problems.append(f"this thread cannot write: {exc}")
            result = outcome(store, rec, n)
            outcomes.add(result)
            if result not in ("done", "not done"):
                problems.append(result)
            if problems:
                failures.append(f"{at.where}: {', '.join(problems)}")
                close_cached_connections()  # (a fresh connection: the next runs are judged alone)
        assert failures == [], f"{len(failures)} of {n - 1} points: " + "; ".join(failures)
        # No interrupt left an exception "being handled" in this thread: it would be the
        # __context__ of every later exception, in later tests too (review RV-misc R6: one
        # raised in an except block's clean-up, which has no line number; ctrlc_trace.py).
        assert sys.exc_info() == (None, None, None)
        # Interrupted both before and after the commit (a refused write never commits).
        assert outcomes == ({"not done"} if operation in _FINAL else {"done", "not done"})
        _another_process_writes(store.path, witness.id)
        assert store.integrity_check() == "ok"


def _version_1_database(path: Path) -> None:
    """A database of schema version 1 without the compatible additions (what an older
    hcs-sandbox made): opening it runs the upgrade write (addition 1)."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value TEXT)")
        MIGRATIONS[1](conn)
        conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    finally:
        conn.close()


def _lock_free_for_another_thread(lock: Any) -> bool:
    taken: list[bool] = []

    def take() -> None:
        taken.append(lock.acquire(True, 1.0))
        if taken[-1]:
            lock.release()

    thread = threading.Thread(target=take)
    thread.start()
    thread.join(10)
    return taken == [True]


@pytest.mark.parametrize("database", ["new", "version-1", "current"])
def test_a_ctrl_c_anywhere_in_opening_a_store_leaves_no_lock_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database: str
) -> None:
    """A KeyboardInterrupt at any point of ``Store(path)`` (one per run, every handler point
    of every frame) leaves no connection lock held and no transaction open: on a new
    database and on one of an older schema (``Store.__init__`` holds the connection's lock
    while the upgrade write runs, a nested use of it: a Ctrl+C as that write's BEGIN
    returned left the lock held for good, review RV67 F1), and on a current one whose
    connection this process has (``is_current`` only: a Ctrl+C as its ``acquire`` returned
    left the lock held)."""
    entries: list[Any] = []
    real_entry = Store._entry

    def seen_entry(self: Store, **kwargs: Any) -> Any:  # (this module's frames are no points)
        entry = real_entry(self, **kwargs)
        if not any(entry is e for e in entries):
            entries.append(entry)
        return entry

    monkeypatch.setattr(Store, "_entry", seen_entry)
    n = 0
    failures: list[str] = []
    while True:
        n += 1
        folder = tmp_path / str(n)
        folder.mkdir()
        path = folder / "state.db"
        if database == "version-1":
            _version_1_database(path)
        close_cached_connections()
        entries.clear()
        if database == "current":
            # This process's connection saw the current schema and nobody wrote since (the
            # first open's own WAL switch changes ``data_version``: a second open).
            Store(path).close()
            Store(path).close()
            assert Store.reuse(path) is not None
            del entries[1:]  # (the cached entry, which is_current uses)
        with _interrupt_at(n, None) as at:
            try:
                Store(path).close()
            except KeyboardInterrupt:
                pass
        if at.where is None:  # past the last point: opened undisturbed
            assert at.count == n - 1 > 0
            break
        problems = []
        for entry in entries:
            if entry.lock._is_owned():
                problems.append(f"lock held by this thread (closed={entry.closed})")
                while entry.lock._is_owned():  # (so that the next runs are judged alone)
                    entry.lock.release()
            elif not _lock_free_for_another_thread(entry.lock):
                problems.append(f"lock held (closed={entry.closed})")
            if not entry.closed and entry.conn.in_transaction:
                problems.append("transaction open")
        if not _other_connection_writes(path):
            problems.append("sqlite's write lock held")
        try:
            with Store(path, timeout=1.0) as store:
                store.reserve("after", None, {})
                if store.integrity_check() != "ok":
                    problems.append("integrity check failed")
        except Exception as exc:  # (a StoreError)
            problems.append(f"cannot open and write: {exc}")
        if problems:
            failures.append(f"{at.where}: {', '.join(problems)}")
    assert entries, "no connection entry was seen"
    assert failures == [], f"{len(failures)} of {n - 1} points: " + "; ".join(failures)
    # No interrupt left an exception "being handled" in this thread: it would be the
    # __context__ of every later exception, in later tests too (review RV-misc R6: one
    # raised in an except block's clean-up, which has no line number; ctrlc_trace.py).
    assert sys.exc_info() == (None, None, None)


def _interrupted_log_line(
    store: Store,
    record_id: str,
    n: int,
    raised: list[BaseException | None],
    where: list[str | None],
) -> None:
    """``add_log_line`` with a KeyboardInterrupt at its ``n``-th point (on this thread):
    what it raised (None: nothing) to ``raised``, where it was interrupted to ``where``."""
    with _interrupt_at(n, None) as at:
        try:
            store.add_log_line(record_id, f"line {n}")
            raised.append(None)
        except BaseException as exc:
            raised.append(exc)
    where.append(at.where)


def test_a_ctrl_c_as_a_write_gets_a_connection_closed_meanwhile_stays_a_ctrl_c(
    tmp_path: Path,
) -> None:
    """A write waits for the connection's lock while another thread closes that connection
    (``close_cached_connections``).  A KeyboardInterrupt at any point of the write then
    leaves the KeyboardInterrupt (or the write done on the current connection), no lock
    held, and the write done wholly or not at all: ``_locked``'s handler asked the closed
    connection whether a transaction was open, and ``ProgrammingError: Cannot operate on
    a closed database`` replaced the KeyboardInterrupt (review RV67 follow-up)."""
    code = Store._locked.__code__
    acquires = [i.offset for i in dis.get_instructions(code) if i.argval == "acquire"]
    acquire_lines = {
        line for start, end, line in code.co_lines() if any(start <= o < end for o in acquires)
    }
    with open_store(tmp_path) as store:
        rec = store.reserve("rec", None, {})
        store.add_log_line(rec.id, "warm")
        failures: list[str] = []
        closed_path_seen = False
        n = 0
        while True:
            n += 1
            entry = store._entry()
            entry.lock.acquire()  # (this thread: holds the lock the write waits for)
            raised: list[BaseException | None] = []
            where: list[str | None] = []
            thread = threading.Thread(
                target=_interrupted_log_line, args=(store, rec.id, n, raised, where)
            )
            thread.start()
            deadline = time.monotonic() + 5
            while thread.is_alive() and time.monotonic() < deadline:  # until it waits
                frame = sys._current_frames().get(thread.ident or 0)
                if (
                    frame is not None
                    and frame.f_code is Store._locked.__code__
                    and frame.f_lineno in acquire_lines
                ):
                    closed_path_seen = True
                    break
                time.sleep(0.001)
            close_cached_connections()  # (closes it under its lock: this thread's, re-entrant)
            entry.lock.release()
            thread.join(30)
            if where == [None]:
                break
            problems = []
            if raised != [] and not isinstance(raised[0], KeyboardInterrupt | type(None)):
                problems.append(f"raised {raised[0]!r}")
            if not _lock_free_for_another_thread(entry.lock):
                problems.append("the closed connection's lock held")
            if not _other_thread_writes(store, rec.id):
                problems.append("this process's lock held")
            lines = [line for _t, line in store.log_lines(rec.id) if line == f"line {n}"]
            if len(lines) > 1:
                problems.append(f"written {len(lines)} times")
            if problems:
                failures.append(f"{where[0]}: {', '.join(problems)}")
        assert closed_path_seen
        assert failures == [], f"{len(failures)} of {n - 1} points: " + "; ".join(failures)
        # (The interrupts ran in the writer threads; the test's own thread is left clean too:
        # review RV-misc R6, as above.)
        assert sys.exc_info() == (None, None, None)


def test_the_connection_lock_tells_whether_this_thread_owns_it(tmp_path: Path) -> None:
    """``Store._locked`` and ``Store.is_current`` ask the connection's lock (CPython's C
    ``_thread.RLock``) ``_is_owned()`` after an interrupt: a private method (also used by
    ``threading.Condition``), not in typeshed.  Checked present and right on CPython 3.10.13,
    3.11.7, 3.12.1 and 3.13.0 (review RV67 F4).  A CPython without it fails here, not at
    every store use with a bare AttributeError."""
    with open_store(tmp_path) as store:
        lock = store._entry().lock
    assert type(lock) is threading.RLock().__class__  # (the C one, as threading's)
    in_other_thread: list[bool] = []

    def ask() -> None:
        in_other_thread.append(lock._is_owned())

    assert lock._is_owned() is False
    lock.acquire()
    try:
        assert lock._is_owned() is True
        lock.acquire()  # (re-entrant: still owned after one release)
        lock.release()
        assert lock._is_owned() is True
        thread = threading.Thread(target=ask)
        thread.start()
        thread.join(10)
        assert in_other_thread == [False]
    finally:
        lock.release()
    assert lock._is_owned() is False


def test_a_ctrl_c_while_is_current_waits_for_another_threads_lock(tmp_path: Path) -> None:
    """Another thread holds the connection's lock; a real SIGINT interrupts this (main)
    thread while ``Store(path)`` waits for it in ``is_current``.  The KeyboardInterrupt
    comes out as it is and the other thread's hold is left alone: ``is_current``'s handler
    releases only a count its own acquire took (review RV70 F1: without that check the
    release raised ``RuntimeError: cannot release un-acquired lock`` in its place)."""
    import signal

    if threading.current_thread() is not threading.main_thread():  # pragma: no cover
        pytest.skip("signals are handled on the main thread")
    with open_store(tmp_path) as store:
        store.reserve("rec", None, {})
        entry = store._entry()
        holding = threading.Event()
        done = threading.Event()

        def hold() -> None:
            with entry.lock:
                holding.set()
                done.wait(30)

        holder = threading.Thread(target=hold)
        holder.start()
        assert holding.wait(10)
        main = threading.main_thread().ident or 0

        def interrupt_when_waiting() -> None:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                frame = sys._current_frames().get(main)
                if frame is not None and frame.f_code is Store.is_current.__code__:
                    break
                time.sleep(0.001)
            time.sleep(0.05)  # (in the acquire: it blocks until the holder lets go)
            signal.pthread_kill(main, signal.SIGINT)

        kicker = threading.Thread(target=interrupt_when_waiting)
        kicker.start()
        try:
            with pytest.raises(KeyboardInterrupt):
                Store(store.path)
        finally:
            kicker.join(10)
            done.set()
            holder.join(10)
        assert not holder.is_alive()  # its ``with`` released its own hold (no RuntimeError)
        assert _lock_free_for_another_thread(entry.lock)
        assert _other_thread_writes(store, store.get("rec").id)
