"""Simulator performance round 4: two-section system records (state / detail), the cache of
validated document texts, the worker pool's timer thread, plain handle classes, data files."""

from __future__ import annotations

import ctypes
import threading
import time
import zlib
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from simapi import Api, vm_doc

from hcs_sandbox.sim import hresults as H
from hcs_sandbox.sim import validate
from hcs_sandbox.sim.core import Fault, Simulator
from hcs_sandbox.sim.state import DETAIL_KEYS, Partial, StateStore, _decode
from hcs_sandbox.sim.workers import Workers

_DOC = {"SchemaVersion": {"Major": 2, "Minor": 1}, "VirtualMachine": {"StopOnReset": True}}


def _full() -> dict[str, Any]:
    return {
        "Id": "VM-1",
        "RuntimeId": "r1",
        "State": "Created",
        "Handles": {"1": 1},
        "Document": _DOC,
        "Shares": [{"Name": "s", "Path": "/x"}],
        "NetworkAdapters": {},
        "Attachments": {"primary/0": {"Path": "/d"}},
    }


# ---- two-section records -------------------------------------------------------------------


def test_system_record_has_a_state_section_and_a_detail_section(tmp_path: Path) -> None:
    store = StateStore(str(tmp_path))
    with store.lock_record("systems", "VM-1"):
        store.write("systems", "VM-1", _full())
    raw = (tmp_path / "systems" / "vm-1.json").read_bytes()
    header, body = raw.split(b"\n", 1)
    tag, _crc, length, split = header.split(b" ")
    assert tag == b"HCSSIM"
    assert int(length) == len(body)
    assert b"Document" not in body[: int(split)]
    assert b"Document" in body[int(split) :]
    assert store.read("systems", "vm-1") == _full()  # full read: the same record as written
    assert [r["Id"] for r in store.records("systems")] == ["VM-1"]
    assert store.records("systems") == [_full()]
    partial = store.read("systems", "vm-1", detail=False)
    assert isinstance(partial, Partial)
    assert not set(DETAIL_KEYS) & set(partial)
    assert partial == {k: v for k, v in _full().items() if k not in DETAIL_KEYS}
    assert store.records("systems", detail=False) == [partial]
    store.close()


def test_writing_a_partial_record_back_keeps_or_merges_its_details(tmp_path: Path) -> None:
    store = StateStore(str(tmp_path))
    with store.lock_record("systems", "VM-1"):
        store.write("systems", "VM-1", _full())
        partial = store.read("systems", "VM-1", detail=False)
        assert partial is not None
        partial["State"] = "Running"
        store.write("systems", "VM-1", partial)  # details kept, not re-encoded
        assert store.read("systems", "VM-1") == {**_full(), "State": "Running"}
        partial = store.read("systems", "VM-1", detail=False)
        assert partial is not None
        partial["Shares"] = []  # a detail key set on a partial record: merged
        store.write("systems", "VM-1", partial)
        assert store.read("systems", "VM-1") == {**_full(), "State": "Running", "Shares": []}
        # An exit status (a plain dict without details) drops them.
        store.write("systems", "VM-1", {"Id": "VM-1", "RuntimeId": "r1", "State": "Stopped"})
        assert store.read("systems", "VM-1") == {
            "Id": "VM-1",
            "RuntimeId": "r1",
            "State": "Stopped",
        }
    # Other kinds keep one section, even with a key named like a detail key.
    with store.lock_record("endpoints", "e"):
        store.write("endpoints", "e", {"Document": 1})
    assert (tmp_path / "endpoints" / "e.json").read_bytes().split(b"\n")[0].count(b" ") == 2
    assert store.read("endpoints", "e") == {"Document": 1}
    store.close()


def test_two_section_records_detect_torn_reads_and_old_records_still_read() -> None:
    body = b'{"Id":"a"}{"Document":{}}'
    good = b"HCSSIM %08x %d 10\n" % (zlib.crc32(body), len(body)) + body
    assert _decode(good) == {"Id": "a", "Document": {}}
    assert _decode(good, detail=False) == {"Id": "a"}
    torn = good.replace(b"Document", b"Documenx")
    assert _decode(torn) is _decode(b"HCSSIM 0 5 9\nabc")  # both torn (CRC / short body)
    bad_split = b"HCSSIM %08x %d 99\n" % (zlib.crc32(body), len(body)) + body
    assert _decode(bad_split) is _decode(torn)
    old = b'{"Id":"a","Document":{}}'
    assert _decode(b"HCSSIM %08x %d\n" % (zlib.crc32(old), len(old)) + old) == {
        "Id": "a",
        "Document": {},
    }


def test_document_survives_state_changes_through_the_exports(api: Api, sim: Simulator) -> None:
    handle = api.running("sections-vm")
    record = sim.store.read("systems", "sections-vm")
    assert record is not None
    assert record["State"] == "Running"
    assert record["Document"] == vm_doc(GuestConnection={})  # kept through Created -> Running
    assert api.call("HcsTerminateComputeSystem", handle, None)[0] == 0
    api.close(handle)
    tomb = sim.store.read("systems", "sections-vm")
    assert tomb is not None
    assert tomb["State"] == "Stopped"
    assert "Document" not in tomb


# ---- validated texts -----------------------------------------------------------------------


def test_parse_hcs_validates_an_identical_text_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = validate.validate_hcs

    def counting(value: Any, type_name: str, max_version: Any, path: str = "") -> None:
        calls.append(type_name)
        real(value, type_name, max_version, path)

    monkeypatch.setattr(validate, "validate_hcs", counting)
    monkeypatch.setattr(validate, "_VALIDATED", {})
    text = '{"PropertyTypes": ["Memory"]}'
    first = validate.parse_hcs(text, "q", "System_PropertyQuery", (2, 1))
    second = validate.parse_hcs(text, "q", "System_PropertyQuery", (2, 1))
    assert first == second == {"PropertyTypes": ["Memory"]}
    assert first is not second
    assert calls == ["System_PropertyQuery"]
    validate.parse_hcs(text, "q", "System_PropertyQuery", (2, 6))  # another host version
    assert len(calls) == 2
    bad = '{"PropertyTypes": ["Nope"]}'
    for _ in range(2):  # failures are never cached
        with pytest.raises(validate.SchemaError, match="Nope"):
            validate.parse_hcs(bad, "q", "System_PropertyQuery", (2, 1))
    assert len(calls) == 4
    with pytest.raises(validate.SchemaError, match="empty"):
        validate.parse_hcs("  ", "q", "System_PropertyQuery", (2, 1))


def test_data_files_read_next_to_the_module_match_importlib_resources() -> None:
    data = resources.files("hcs_sandbox.sim").joinpath("data")
    for name in ("hcs-schema.json", "hcs-openapi-summary.json", "wsb-dump-fields.json"):
        assert validate._data_text(name) == data.joinpath(name).read_text(encoding="utf-8")


# ---- worker pool -----------------------------------------------------------------------------


def test_timer_thread_is_not_churned() -> None:
    workers = Workers("churn")
    done = threading.Semaphore(0)
    workers.submit(done.release)
    assert done.acquire(timeout=2)
    time.sleep(0.05)  # the workers are idle now
    started = workers._timer_started
    for _ in range(20):  # immediate jobs with idle workers: no timer thread
        workers.submit(done.release)
        assert done.acquire(timeout=2)
    assert workers._timer_started == started
    for _ in range(5):  # delayed jobs, one after the other: one lingering timer thread
        workers.submit(done.release, delay=0.01)
        assert done.acquire(timeout=2)
    assert workers._timer_started <= started + 1
    order: list[int] = []
    ran = threading.Event()
    workers.submit(lambda: (order.append(2), ran.set()), delay=0.2)
    workers.submit(lambda: order.append(1), delay=0.01)  # earlier than the timer sleeps until
    assert ran.wait(2)
    assert order == [1, 2]


# ---- plain classes ---------------------------------------------------------------------------


def test_fault_keeps_the_dataclass_api() -> None:
    fault = Fault("HcsStartComputeSystem", 2, hang=True)
    assert fault == Fault("HcsStartComputeSystem", 2, fault.hresult, True, 1, "call")
    assert fault != Fault("HcsStartComputeSystem", 3, hang=True)
    assert repr(fault).startswith("Fault(function='HcsStartComputeSystem', nth=2, hresult=")
    assert repr(fault).endswith("hang=True, times=1, where='call')")
    with pytest.raises(TypeError):
        hash(fault)


def test_delayed_jobs_never_run_early() -> None:
    workers = Workers("early")
    ran: dict[int, float] = {}
    due: dict[int, float] = {}
    done = threading.Semaphore(0)
    delays = [0.05, 0.01, 0.03, 0.03, 0.08, 0.001, 0.02]
    for i, delay in enumerate(delays):
        due[i] = time.monotonic() + delay

        def job(i: int = i) -> None:
            ran[i] = time.monotonic()
            done.release()

        workers.submit(job, delay=delay)
    for _ in delays:
        assert done.acquire(timeout=2)
    assert all(ran[i] >= due[i] for i in due), {i: ran[i] - due[i] for i in due}


def test_a_blocked_time_keeper_does_not_hold_up_later_delayed_jobs() -> None:
    # The worker keeping time runs the first due job itself; while it blocks, the watcher
    # must get another worker to run the next delayed job.
    workers = Workers("keeper")
    release = threading.Event()
    second = threading.Event()
    workers.submit(lambda: release.wait(5), delay=0.02)
    workers.submit(second.set, delay=0.06)
    try:
        assert second.wait(2), "a delayed job waited for a blocked worker"
    finally:
        release.set()


def test_a_time_keeper_taking_a_job_hands_time_keeping_to_an_idle_worker() -> None:
    # The keeper runs the first due job itself; with another worker idle, that worker keeps
    # time for the next delayed job at once.  (Before: only the stall watcher stepped in,
    # at the next job's due time + 2 x STALL, so that job ran ~40 ms late behind a blocking
    # one although a worker sat idle.)
    workers = Workers("handover")
    warm = threading.Semaphore(0)
    for _ in range(Workers.CORE):
        workers.submit(lambda: (time.sleep(0.01), warm.release()))
    for _ in range(Workers.CORE):
        assert warm.acquire(timeout=2)
    time.sleep(0.05)  # every core worker idle now
    assert workers._workers == Workers.CORE
    release = threading.Event()
    blocking = threading.Event()
    second = threading.Event()
    workers.submit(lambda: (blocking.set(), release.wait(5)), delay=0.01)  # the keeper runs it
    workers.submit(second.set, delay=1.0)
    try:
        assert blocking.wait(2)
        deadline = time.monotonic() + 0.5  # well before the second job is due
        while not workers._keeper and time.monotonic() < deadline:
            time.sleep(0.002)
        assert workers._keeper, "nobody keeps time while the first job blocks"
        assert not second.is_set()  # never early
        assert second.wait(3)
    finally:
        release.set()


def test_an_idle_pool_keeps_time_without_a_watcher_thread() -> None:
    workers = Workers("quiet")
    done = threading.Semaphore(0)
    for _ in range(5):  # one delayed job at a time: the worker keeping time runs it
        workers.submit(done.release, delay=0.01)
        assert done.acquire(timeout=2)
    assert workers._timer_started == 0


def test_stopped_systems_are_closed_and_not_found_without_record_locks(
    api: Api, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    handle = api.running("done-vm")
    assert api.call("HcsTerminateComputeSystem", handle, None)[0] == 0
    locked: list[str] = []
    real = sim.store.lock_record

    def counting(kind: str, key: str) -> Any:
        locked.append(f"{kind}/{key}")
        return real(kind, key)

    monkeypatch.setattr(sim.store, "lock_record", counting)
    api.close(handle)  # this process saw the exit: no handle count is left to change
    out = ctypes.c_void_p()
    hr = api.HcsOpenComputeSystem("done-vm", 0x10000000, ctypes.byref(out)) & 0xFFFFFFFF
    assert hr == H.HCS_E_SYSTEM_NOT_FOUND
    assert locked == []
    assert sim.store.read("systems", "done-vm", detail=False)["State"] == "Stopped"
