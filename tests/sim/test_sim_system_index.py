"""The index of system records that enumeration reads (StateStore.summaries): the same answer
as reading every record, exact for records created, rewritten or deleted a moment ago (by this
or another process), few records read when nothing changed, a bad index rebuilt."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from simapi import Api, vm_doc

from hcs_sandbox.sim import state
from hcs_sandbox.sim.core import SUMMARY_KEYS, Simulator
from hcs_sandbox.sim.state import StateStore

KEYS = ("Id", "State", "StartTime")


def _record(i: int, state_: str = "Created") -> dict[str, Any]:
    return {
        "Id": f"VM-{i}",
        "RuntimeId": f"r{i}",
        "State": state_,
        "StartTime": None,
        "Handles": {},
        "Document": {"SchemaVersion": {"Major": 2, "Minor": 1}},
    }


def _write(store: StateStore, record: dict[str, Any]) -> None:
    with store.lock_record("systems", record["Id"]):
        store.write("systems", record["Id"], record)


def _slow(store: StateStore) -> list[dict[str, Any]]:
    return [{k: r[k] for k in KEYS if k in r} for r in store.records("systems", detail=False)]


def _age(root: Path, seconds: float = 60.0) -> None:
    """Make every record file look written ``seconds`` ago (the index then vouches for it)."""
    for path in (root / "systems").iterdir():
        st = path.stat()
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - int(seconds * 1e9)))


def _counting_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    reads: list[str] = []
    original = StateStore._read_at

    def read_at(path: str, detail: bool = True) -> Any:
        reads.append(path)
        return original(path, detail)

    monkeypatch.setattr(StateStore, "_read_at", staticmethod(read_at))
    return reads


def test_summaries_equal_the_records(tmp_path: Path) -> None:
    store = StateStore(str(tmp_path))
    for i in range(5):
        _write(store, _record(i))
    with store.lock():
        assert store.summaries("systems", KEYS) == _slow(store)  # built
        assert store.summaries("systems", KEYS) == _slow(store)  # from the index
    assert (tmp_path / "systems.index").read_bytes().startswith(b"HCSSIM ")
    store.close()


def test_unchanged_records_are_not_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = StateStore(str(tmp_path))
    for i in range(5):
        _write(store, _record(i))
    _age(tmp_path)
    with store.lock():
        store.summaries("systems", KEYS)
    reads = _counting_reads(monkeypatch)
    _write(store, _record(3, "Running"))  # rewritten now: its mtime moves
    with store.lock():
        got = store.summaries("systems", KEYS)
    assert [r["State"] for r in got] == ["Created", "Created", "Created", "Running", "Created"]
    assert reads == [str(tmp_path / "systems" / "vm-3.json")]
    store.close()


def test_a_recent_record_is_read_again_even_with_the_same_mtime_and_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write in the same clock tick can keep (mtime, size): a record written less than
    INDEX_MARGIN_NS before it was indexed is never taken from the index."""
    store = StateStore(str(tmp_path))
    _write(store, _record(1, "Created"))
    path = tmp_path / "systems" / "vm-1.json"
    with store.lock():
        store.summaries("systems", KEYS)
    before = path.stat()
    _write(store, _record(1, "Paused!"))  # the same length as "Created"
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_mtime_ns, after.st_size, after.st_ino) == (
        before.st_mtime_ns,
        before.st_size,
        before.st_ino,
    )
    with store.lock():
        assert [r["State"] for r in store.summaries("systems", KEYS)] == ["Paused!"]
    store.close()


def test_records_made_or_deleted_by_another_store_are_seen(tmp_path: Path) -> None:
    ours, theirs = StateStore(str(tmp_path)), StateStore(str(tmp_path))  # two processes
    _write(theirs, _record(1))
    _age(tmp_path)
    with ours.lock():
        assert [r["Id"] for r in ours.summaries("systems", KEYS)] == ["VM-1"]
    _write(theirs, _record(2))
    with ours.lock():
        assert [r["Id"] for r in ours.summaries("systems", KEYS)] == ["VM-1", "VM-2"]
    theirs.delete("systems", "VM-1")
    with ours.lock():
        assert [r["Id"] for r in ours.summaries("systems", KEYS)] == ["VM-2"]
    _write(theirs, _record(2, "Running"))
    with ours.lock():
        assert [r["State"] for r in ours.summaries("systems", KEYS)] == ["Running"]
    ours.close()
    theirs.close()


@pytest.mark.parametrize(
    "index",
    [
        b"HCSSIM 00000000 5\nbroken",  # torn
        b"not json at all",
        b'{"Version": 99, "Files": {}}',  # another format
        json.dumps({"Version": 1, "Keys": ["Id"], "Files": {}}).encode(),  # other keys
        json.dumps({"Version": 1, "Keys": list(KEYS), "Files": {"vm-1.json": [1, 2]}}).encode(),
    ],
)
def test_a_bad_index_is_ignored_and_written_again(tmp_path: Path, index: bytes) -> None:
    store = StateStore(str(tmp_path))
    for i in range(3):
        _write(store, _record(i))
    (tmp_path / "systems.index").write_bytes(index)
    with store.lock():
        assert store.summaries("systems", KEYS) == _slow(store)
    assert state._read_index(str(tmp_path / "systems.index"), KEYS)
    store.close()


def test_a_record_without_some_keys(tmp_path: Path) -> None:
    store = StateStore(str(tmp_path))
    record = _record(1)
    del record["StartTime"]
    _write(store, record)
    _age(tmp_path)
    with store.lock():
        first = store.summaries("systems", KEYS)
        assert first == store.summaries("systems", KEYS) == _slow(store)
    assert "StartTime" not in first[0]
    store.close()


def test_enumeration_reaps_handles_of_dead_processes_through_the_index(
    api: Api, sim: Simulator
) -> None:
    hr, handle, result = api.create("reaped", vm_doc())
    assert hr == 0, result
    hr, listing = api.call("HcsEnumerateComputeSystems", None)
    assert hr == 0
    assert "reaped" in (listing or "")
    # A process that died holding a handle (pid 2**22 + 1 is above Linux's pid_max).
    with sim.store.lock_record("systems", "reaped"):
        record = sim.store.read("systems", "reaped", detail=False)
        assert record is not None
        record["Handles"] = {**record["Handles"], str(2**22 + 1): 1}
        sim.store.write("systems", "reaped", record)
    hr, listing = api.call("HcsEnumerateComputeSystems", None)
    assert hr == 0
    listed = [s for s in json.loads(listing or "[]") if s["Id"] == "reaped"]
    assert len(listed) == 1
    full = sim.store.read("systems", "reaped")
    assert full is not None
    assert str(2**22 + 1) not in full["Handles"]
    assert full["Document"]  # the reap wrote the record back with its details
    with sim.store.lock():
        summaries = sim.store.summaries("systems", SUMMARY_KEYS)
    assert next(s for s in summaries if s["Id"] == "reaped")["Handles"] == full["Handles"]
    api.call("HcsTerminateComputeSystem", handle, None)
    api.close(handle)


def _age_stamp(root: Path, seconds: float = 60.0) -> None:
    stamp = root / "systems.stamp"
    st = stamp.stat()
    os.utime(stamp, ns=(st.st_atime_ns, st.st_mtime_ns - int(seconds * 1e9)))


def test_nothing_written_since_the_index_nothing_listed_or_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = StateStore(str(tmp_path))
    for i in range(4):
        _write(store, _record(i))
    _age(tmp_path)
    _age_stamp(tmp_path)
    with store.lock():
        expected = store.summaries("systems", KEYS)  # the stamp is old: the index vouches
    reads = _counting_reads(monkeypatch)
    listed: list[str] = []
    original_scandir = os.scandir

    def scandir(path: Any) -> Any:
        listed.append(str(path))
        return original_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with store.lock():
        assert store.summaries("systems", KEYS) == expected == _slow(store)
    assert reads == [str(tmp_path / "systems" / f"vm-{i}.json") for i in range(4)]  # _slow
    assert listed == [str(tmp_path / "systems")]  # _slow only
    store.delete("systems", "VM-0")  # a deletion touches the stamp too
    with store.lock():
        assert [r["Id"] for r in store.summaries("systems", KEYS)] == ["VM-1", "VM-2", "VM-3"]
    store.close()


def test_a_recent_stamp_is_not_trusted(tmp_path: Path) -> None:
    """The stamp was touched less than INDEX_MARGIN_NS before the index was made: a later
    touch in the same clock tick could keep its mtime, so the records are listed again."""
    store = StateStore(str(tmp_path))
    _write(store, _record(1))
    _age(tmp_path)
    stamp = tmp_path / "systems.stamp"
    with store.lock():
        store.summaries("systems", KEYS)
    before = stamp.stat()
    _write(store, _record(2))
    os.utime(stamp, ns=(before.st_atime_ns, before.st_mtime_ns))  # the same tick
    with store.lock():
        assert [r["Id"] for r in store.summaries("systems", KEYS)] == ["VM-1", "VM-2"]
    store.close()


# ---- what a simulated CLI start imports; record file names ---------------------------------


def test_the_simulator_core_imports_no_pathlib_uuid_datetime_ipaddress() -> None:
    """pathlib (and the urllib.parse and ipaddress it imports), uuid and datetime are imported
    where they are used, not by every simulated CLI command (~5-10 ms of its start)."""
    import subprocess
    import sys

    code = (
        "import sys; import hcs_sandbox, ctypes, json, threading\n"
        "heavy = ('pathlib', 'urllib.parse', 'ipaddress', 'uuid', 'datetime')\n"
        "before = {m for m in heavy if m in sys.modules}\n"
        "import hcs_sandbox.sim.core, hcs_sandbox.sim.backend\n"
        "print(sorted(m for m in heavy if m in sys.modules and m not in before))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize(
    "key", ["VM-1", "a b/c%d", "Ünïcødé-ид", "x~y_z.w-1", "{0BAD-GUID}", "tab\there", ""]
)
def test_record_file_names_are_what_urllib_quote_gives(key: str) -> None:
    from urllib.parse import quote

    state._file_name.cache_clear()
    assert state._file_name(key) == quote(key.lower(), safe="")


def test_only_stamped_kinds_have_an_index(tmp_path: Path) -> None:
    store = StateStore(str(tmp_path))
    with store.lock(), pytest.raises(ValueError, match="no index"):
        store.summaries("networks", ("ID",))
    store.close()


def test_a_write_moves_the_stamp_before_the_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer killed between the two leaves the stamp moved, never a silent change."""
    store = StateStore(str(tmp_path))
    order: list[str] = []
    original_touch, original_write_at = store.touch, StateStore._write_at
    monkeypatch.setattr(store, "touch", lambda name: (order.append(name), original_touch(name)))

    def write_at(path: str, record: Any, detail: bytes | None = None) -> None:
        order.append(os.path.basename(path))
        original_write_at(path, record, detail)

    monkeypatch.setattr(StateStore, "_write_at", staticmethod(write_at))
    _write(store, _record(1))
    store.delete("systems", "VM-1")
    assert order == ["systems.stamp", "vm-1.json", "systems.stamp"]
    store.close()
