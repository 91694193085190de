"""Per-handle event state: the exit rendezvous and the subscribers of one handle.

One :class:`Watch` per compute system or process handle is registered with
:mod:`hcs_sandbox.hcs.events`.  It never references the public object that owns it, so the
public object can be garbage-collected (and finalized) while HCS may still send events.

Terminal events, as hcsshim handles them (``internal/hcs/v2/notification.go``):
``HcsEventSystemExited`` / ``HcsEventProcessExited`` publish the exit status;
``HcsEventServiceDisconnect`` aborts every waiter (vmcompute went away).  Closing the handle
releases waiters without publishing an exit (HCS sends no final event on close).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from hcs_sandbox.hcs.events import Event
from hcs_sandbox.native.types import HcsEventType

__all__ = ["EventSink", "Watch"]

_log = logging.getLogger("hcs_sandbox.hcs")

EventSink = Callable[[Event], None] | queue.Queue[Event]


class Watch:
    """Exit state and subscribers for one handle; fed from HCS threads."""

    def __init__(self, exit_type: int) -> None:
        self._exit_type = exit_type
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._sinks: dict[int, EventSink] = {}
        self._next_token = 1
        self.exit_status: dict[str, Any] | None = None
        self.exit_data: str | None = None
        self.exited = False
        self.disconnected = False
        self.closed = False
        self.events_seen = 0

    # -- fed by the C callback (any thread) ------------------------------------------------

    def on_event(self, event: Event) -> None:
        with self._lock:
            self.events_seen += 1
            if event.type == self._exit_type and not self.exited:
                self.exit_data = event.data
                status = event.json()
                self.exit_status = status if isinstance(status, dict) else {}
                self.exited = True
                self._done.set()
            elif event.type == HcsEventType.SERVICE_DISCONNECT:
                self.disconnected = True
                self._done.set()
            sinks = list(self._sinks.values())
        for sink in sinks:
            try:
                if isinstance(sink, queue.Queue):
                    sink.put_nowait(event)
                else:
                    sink(event)
            except Exception:
                _log.exception("an event subscriber failed on %s", event.name)

    # -- used by the owner -----------------------------------------------------------------

    def mark_exited(self, status: dict[str, Any]) -> None:
        """Publish an exit learned without an event (a status query after registering)."""
        with self._lock:
            if not self.exited:
                self.exit_status = status
                self.exited = True
                self._done.set()

    def mark_closed(self) -> None:
        with self._lock:
            self.closed = True
            self._done.set()

    def wait(self, timeout: float | None) -> bool:
        return self._done.wait(timeout)

    def subscribe(self, sink: EventSink) -> int:
        with self._lock:
            token = self._next_token
            self._next_token += 1
            self._sinks[token] = sink
            return token

    def unsubscribe(self, token: int) -> None:
        with self._lock:
            self._sinks.pop(token, None)
