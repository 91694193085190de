"""``Watch``'s exit rendezvous (``_watch._Latch``, a one-lock stand-in for
``threading.Event``) and ``events.in_callback``'s per-thread default."""

from __future__ import annotations

import ctypes
import threading
import time

from hcs_sandbox.hcs import _watch, events
from hcs_sandbox.hcs._watch import Watch
from hcs_sandbox.hcs.events import Event
from hcs_sandbox.native.types import HcsEventType


def test_latch_waits_until_set_and_then_never_again() -> None:
    latch = _watch._Latch()
    assert not latch.is_set()
    assert latch.wait(0) is False
    assert latch.wait(-1.0) is False  # a negative timeout is one look, as Event.wait's
    started = time.monotonic()
    assert latch.wait(0.05) is False
    assert time.monotonic() - started >= 0.04
    latch.set()
    latch.set()  # idempotent
    assert latch.is_set()
    assert [latch.wait(t) for t in (0, 0.01, 30.0)] == [True, True, True]


def test_one_set_releases_every_waiter() -> None:
    latch = _watch._Latch()
    results: list[bool] = []
    lock = threading.Lock()

    def waiter(timeout: float) -> None:
        got = latch.wait(timeout)
        with lock:
            results.append(got)

    threads = [threading.Thread(target=waiter, args=(t,)) for t in (60.0, 30.0) * 4]
    for thread in threads:
        thread.start()
    time.sleep(0.05)
    assert results == []  # all blocked
    latch.set()
    for thread in threads:
        thread.join(10)
        assert not thread.is_alive()
    assert results == [True] * len(threads)
    assert latch.wait(0) is True  # the gate was handed back by every waiter


def test_watch_exit_from_another_thread_ends_a_wait() -> None:
    watch = Watch(HcsEventType.SYSTEM_EXITED)
    timer = threading.Timer(
        0.05, watch.on_event, args=(Event(HcsEventType.SYSTEM_EXITED, '{"Status": 0}'),)
    )
    timer.start()
    try:
        assert watch.wait(30.0) is True
    finally:
        timer.join()
    assert watch.exited
    assert watch.exit_status == {"Status": 0}
    watch.mark_closed()  # a set after the exit: no second release of the gate
    assert watch.wait(0) is True


def test_in_callback_is_false_on_a_thread_that_never_delivered() -> None:
    seen: list[bool] = []
    thread = threading.Thread(target=lambda: seen.append(events.in_callback()))
    thread.start()
    thread.join()
    assert seen == [False]
    assert events.in_callback() is False


def test_in_callback_is_true_while_delivering() -> None:
    seen: list[bool] = []
    event_id = events.register(lambda event: seen.append(events.in_callback()))
    try:
        raw = events.HCS_EVENT(Type=HcsEventType.SYSTEM_EXITED)
        events._on_event(ctypes.pointer(raw), event_id)
    finally:
        events.unregister(event_id)
    assert seen == [True]
    assert events.in_callback() is False
