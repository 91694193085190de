"""Many threads at once; events racing with close."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from hcs_sandbox.hcs import events
from hcs_sandbox.hcs.system import ComputeSystem


def test_50_threads_create_start_terminate(
    sim: Any, vm_document: Callable[..., dict[str, Any]]
) -> None:
    sim.set_latency("*", 0.02)
    n = 50
    statuses: list[dict[str, Any]] = []
    failures: list[BaseException] = []
    lock = threading.Lock()
    barrier = threading.Barrier(n)
    before = events.registered_count()

    def worker() -> None:
        try:
            barrier.wait(10)
            with ComputeSystem.create(f"conc-{uuid.uuid4()}", vm_document(), timeout=30) as s:
                s.start(timeout=30)
                s.terminate(timeout=30)
                status = s.wait(30)
            with lock:
                statuses.append(status)
        except BaseException as exc:
            with lock:
                failures.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(n)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "deadlock: workers still running"
    assert not failures, failures[:3]
    assert len(statuses) == n  # no lost SystemExited event
    assert all(s.get("ExitType") == "ForcedExit" for s in statuses)
    assert time.monotonic() - t0 < 30
    assert events.registered_count() == before


def test_close_while_events_arrive(sim: Any, vm_document: Callable[..., dict[str, Any]]) -> None:
    """Terminate many systems and close their handles while the exit events are being
    delivered from simulator threads: no crash, no callback into a dead context."""
    systems = [ComputeSystem.create(f"race-{uuid.uuid4()}", vm_document()) for _ in range(20)]
    for s in systems:
        s.start()
    before = events.registered_count()
    received: list[str] = []
    for s in systems:
        s.subscribe(lambda e: received.append(e.name))
    for s in systems:
        s.terminate()
        s.close()  # races with the SystemExited delivery
    assert all(s.closed for s in systems)
    assert events.registered_count() == before - len(systems)
    time.sleep(0.1)  # late events for closed ids are dropped, not raised into C
    assert set(received) <= {"SystemExited"}


def test_event_callback_copies_the_event_from_a_pointer_or_an_address() -> None:
    """The C callback reads HCS_EVENT once (POINTER(HCS_EVENT), its declared type) or from a
    raw address, copies EventData, and dispatches by context id; NULL and unknown ids are
    dropped without raising."""
    import ctypes

    from hcs_sandbox.native.types import HCS_EVENT, HcsEventType

    seen: list[events.Event] = []
    event_id = events.register(seen.append)
    try:
        data = ctypes.create_unicode_buffer('{"Status":0}')
        raw = HCS_EVENT(
            Type=HcsEventType.SYSTEM_EXITED, EventData=ctypes.addressof(data), Operation=7
        )
        events.callback()(ctypes.pointer(raw), event_id)  # through the C thunk
        events._on_event(ctypes.addressof(raw), event_id)  # a raw address
        empty = HCS_EVENT(Type=HcsEventType.SERVICE_DISCONNECT)
        events._on_event(ctypes.pointer(empty), event_id)
        events._on_event(None, event_id)  # NULL: nothing
        events._on_event(ctypes.pointer(raw), 10**9)  # unknown context: dropped
    finally:
        events.unregister(event_id)
    assert seen == [
        events.Event(HcsEventType.SYSTEM_EXITED, '{"Status":0}', 7),
        events.Event(HcsEventType.SYSTEM_EXITED, '{"Status":0}', 7),
        events.Event(HcsEventType.SERVICE_DISCONNECT, None, None),
    ]
