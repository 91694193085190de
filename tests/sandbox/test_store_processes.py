"""The store across processes: one winner per name, no lost writes, and crash safety."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hcs_sandbox.sandbox.store import STATES, open_store

# A worker: open the store, wait for the start signal (a file), reserve names, report.
WORKER = r"""
import json, os, sys, time
from hcs_sandbox.errors import NameInUseError
from hcs_sandbox.sandbox.store import Store
db, go, names = sys.argv[1], sys.argv[2], sys.argv[3:]
store = Store(db)
deadline = time.monotonic() + 60
while not os.path.exists(go):
    if time.monotonic() > deadline:
        sys.exit("start signal never came")
    time.sleep(0.002)
results = []
for name in names:
    try:
        rec = store.reserve(name, None, {"pid": os.getpid()})
        results.append(["won", rec.id])
    except NameInUseError as exc:
        results.append(["lost", str(exc)])
store.close()
print(json.dumps(results))
"""

# A writer that is killed: commits some records, then holds an open transaction with many
# uncommitted inserts (or keeps committing in a loop) until it is killed.
WRITER = r"""
import sys, time
from hcs_sandbox.sandbox.store import Store
db, mode = sys.argv[1], sys.argv[2]
store = Store(db)
for i in range(10):
    store.reserve(f"committed-{i}", None, {"i": i})
if mode == "open-transaction":
    def body(entry):
        for i in range(500):
            entry.conn.execute(
                "INSERT INTO sandboxes (id, name, state, system_id, created_at, updated_at) "
                "VALUES (?, ?, 'creating', ?, 0, 0)",
                (f"00000000-0000-4000-8000-{i:012d}", f"uncommitted-{i}", "x"),
            )
        print("READY", flush=True)
        time.sleep(120)
    store._write("test", body)
else:
    print("READY", flush=True)
    i = 0
    while True:
        rec = store.reserve(f"loop-{i}", None, {"blob": "x" * 2000, "i": i})
        store.add_file(rec.id, f"/tmp/f{i}")
        store.update(rec.id, state="running", expect_state="creating")
        i += 1
"""


def _spawn(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _run_workers(db: Path, go: Path, name_lists: list[list[str]]) -> list[list[list[str]]]:
    procs = [_spawn(WORKER, str(db), str(go), *names) for names in name_lists]
    time.sleep(0.3)  # let them start; they all wait for the signal
    go.write_text("go")
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=90)
        assert proc.returncode == 0, err
        outputs.append(json.loads(out))
    return outputs


def test_twenty_processes_one_name_exactly_one_wins(tmp_path: Path) -> None:
    with open_store(tmp_path) as store:
        db = store.path
    outputs = _run_workers(db, tmp_path / "go", [["Contested"] for _ in range(20)])
    flat = [result for out in outputs for result in out]
    winners = [r for r in flat if r[0] == "won"]
    losers = [r for r in flat if r[0] == "lost"]
    assert len(winners) == 1
    assert len(losers) == 19
    for _, message in losers:
        assert "'Contested' is already used" in message
        assert "hcs-sandbox rm Contested" in message
    with open_store(tmp_path) as store:
        records = store.list()
        assert [r.id for r in records] == [winners[0][1]]


def test_processes_reserving_different_names_all_succeed(tmp_path: Path) -> None:
    with open_store(tmp_path) as store:
        db = store.path
    lists = [[f"p{p}-n{n}" for n in range(10)] for p in range(12)]
    outputs = _run_workers(db, tmp_path / "go", lists)
    assert all(r[0] == "won" for out in outputs for r in out)
    with open_store(tmp_path) as store:
        names = {r.name for r in store.list()}
        assert names == {n for names in lists for n in names}
        assert store.integrity_check() == "ok"


def _wait_ready(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == "READY", proc.stderr.read() if proc.stderr else line


def test_killed_writer_with_open_transaction_leaves_db_intact(tmp_path: Path) -> None:
    with open_store(tmp_path) as store:
        db = store.path
    proc = _spawn(WRITER, str(db), "open-transaction")
    try:
        _wait_ready(proc)
    finally:
        proc.kill()  # SIGKILL on POSIX, TerminateProcess on Windows
        proc.communicate(timeout=30)
    with open_store(tmp_path) as store:
        assert store.integrity_check() == "ok"
        names = sorted(r.name for r in store.list())
        assert names == sorted(f"committed-{i}" for i in range(10))  # no uncommitted row
        store.reserve("after-crash", None, {})  # the write lock was released
        assert store.get("after-crash").state == "creating"


def test_killed_writer_mid_loop_leaves_only_whole_records(tmp_path: Path) -> None:
    with open_store(tmp_path) as store:
        db = store.path
    proc = _spawn(WRITER, str(db), "loop")
    try:
        _wait_ready(proc)
        time.sleep(0.4)
    finally:
        proc.kill()
        proc.communicate(timeout=30)
    with open_store(tmp_path) as store:
        assert store.integrity_check() == "ok"
        loop = [r for r in store.list() if r.name.startswith("loop-")]
        assert loop, "the writer should have committed something before the kill"
        for rec in loop:
            assert rec.state in STATES
            assert rec.spec["blob"] == "x" * 2000
            index = int(rec.name.split("-")[1])
            # every step is its own transaction: a record is at one of the three steps
            assert (rec.state, rec.files) in {
                ("creating", ()),
                ("creating", (f"/tmp/f{index}",)),
                ("running", (f"/tmp/f{index}",)),
            }
        # only the very last record may be part-way through its steps
        assert sum(1 for r in loop if r.state != "running") <= 1
        store.reserve("after-crash", None, {})


@pytest.mark.skipif(sys.platform == "win32", reason="uses a POSIX signal number")
def test_sigkill_exit_status_is_a_kill(tmp_path: Path) -> None:
    # Guard for the two tests above: proc.kill() really is SIGKILL here (no cleanup handlers).
    proc = _spawn("import time; print('READY', flush=True); time.sleep(60)")
    _wait_ready(proc)
    proc.kill()
    proc.communicate(timeout=30)
    assert proc.returncode == -9
    assert os.name == "posix"


def test_many_processes_creating_the_database_at_once(tmp_path: Path) -> None:
    # No database yet: every worker opens (and may try to create/migrate) it concurrently.
    db = tmp_path / "state.db"
    go = tmp_path / "go"
    go.write_text("go")  # start at once: the race is in opening
    procs = [_spawn(WORKER, str(db), str(go), f"w{n}") for n in range(10)]
    for proc in procs:
        out, err = proc.communicate(timeout=90)
        assert proc.returncode == 0, err
        assert json.loads(out)[0][0] == "won"
    with open_store(tmp_path) as store:
        assert len(store.list()) == 10
        assert store.integrity_check() == "ok"
