"""Per-handle event state: the exit rendezvous and the subscribers of one handle.

One :class:`Watch` per compute system or process handle is registered with
:mod:`hcs_sandbox.hcs.events`.  It never references the public object that owns it, so the
public object can be garbage-collected (and finalized) while HCS may still send events.

Terminal events, as hcsshim handles them (``internal/hcs/v2/notification.go``):
``HcsEventSystemExited`` / ``HcsEventProcessExited`` publish the exit status;
``HcsEventServiceDisconnect`` aborts every waiter (vmcompute went away).  Closing the handle
releases waiters without publishing an exit (HCS sends no final event on close).

Compute systems and processes register, wait and wait natively the same way; the shared
code is here (:func:`set_event_callback`, :meth:`Watch.wait_exit`, :func:`wait_native_exit`).
"""

from __future__ import annotations

import ctypes
import threading
from _thread import allocate_lock as _allocate_lock

from hcs_sandbox import errors
from hcs_sandbox.errors import E_HANDLE, HCS_E_OPERATION_TIMEOUT
from hcs_sandbox.hcs import events
from hcs_sandbox.hcs._call import check, native, optional_json
from hcs_sandbox.hcs._handle import ClosingContext, HandleGuard
from hcs_sandbox.hcs._log import get_logger
from hcs_sandbox.hcs._slices import slices
from hcs_sandbox.hcs.events import Event
from hcs_sandbox.hcs.operation import timeout_ms
from hcs_sandbox.native.types import HcsEventOptions, HcsEventType

# typing and queue for type checking only (~4 ms of a process importing the hcs layer);
# EventSink is also built on demand at run time (module __getattr__ below).
TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~5 ms at start-up
if TYPE_CHECKING:
    import queue
    from collections.abc import Callable
    from typing import Any, TypeAlias, TypeVar

    EventSink: TypeAlias = Callable[[Event], None] | queue.Queue[Event]
    _W = TypeVar("_W", bound="Watched")

__all__ = ["EventSink", "Watch", "Watched", "set_event_callback", "wait_native_exit"]

_log = get_logger("hcs_sandbox.hcs")

HCS_E_SERVICE_DISCONNECT = 0x8037011E  # HCSHResult.md


def __getattr__(name: str) -> Any:
    """``EventSink`` (a subscriber: a callable or a :class:`queue.Queue`) for code that
    imports it at run time; it is built on first use so that importing this module does not
    import ``queue``."""
    if name == "EventSink":
        import queue
        from collections.abc import Callable

        sink = Callable[[Event], None] | queue.Queue[Event]
        globals()["EventSink"] = sink
        return sink
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _Latch:
    """A one-way flag that threads wait on: :class:`threading.Event`'s ``is_set``, ``set``
    and ``wait``, made of one lock held from the start until :meth:`set` releases it (a
    waiter takes it and gives it back at once, so every waiter gets through).  An ``Event``
    is a ``Condition`` on a ``Lock`` plus a waiter lock per wait: ~22 k instructions to make
    (its ``Condition`` raises and catches three ``AttributeError``), ~7 k to set; this is a
    few hundred each.

    :meth:`set` must not run concurrently with itself: :class:`Watch` calls it under its own
    lock.  Waits with a timeout are Ctrl+C-interruptible exactly as ``Event.wait``'s are
    (both end in a lock's timed acquire); a KeyboardInterrupt landing between a waiter's
    acquire and its release leaves the gate taken, and later waits still answer True from
    the flag (a waiter already blocked then sees it at the end of its slice, up to 0.25 s
    late: review RV45).  So it is waited on in slices only, never with ``wait(None)`` (a
    waiter blocked without a timeout would then never wake): it stays private to
    :class:`Watch`, whose waits are all sliced (``_slices``)."""

    __slots__ = ("_flag", "_gate")

    def __init__(self) -> None:
        self._flag = False
        self._gate = _allocate_lock()
        self._gate.acquire()  # held until set()

    def is_set(self) -> bool:
        return self._flag

    def set(self) -> None:
        if not self._flag:
            self._flag = True
            self._gate.release()

    def wait(self, timeout: float) -> bool:
        """True once set; False when ``timeout`` seconds (one slice) passed first.  There
        is no wait without a limit: see the class docstring."""
        if self._flag:
            return True
        gate = self._gate
        if gate.acquire(True, max(timeout, 0.0)):
            gate.release()  # let the next waiter through
            return True
        return self._flag


class Watch:
    """Exit state and subscribers for one handle; fed from HCS threads."""

    def __init__(self, exit_type: int) -> None:
        self._exit_type = exit_type
        self._lock = _allocate_lock()
        self._done = _Latch()
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
        if not sinks:
            return
        import queue  # here, not at import (~1 ms); a lookup in sys.modules after the first

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
        """True once the exit is known, the service disconnected or the handle closed;
        False after ``timeout`` seconds (None: no limit).  Waits in slices
        (:mod:`hcs_sandbox.hcs._slices`): Ctrl+C interrupts it on Windows too, where a
        single ``Event.wait`` keeps it out until the wait ends (before Python 3.14)."""
        # threading refuses a timeout above TIMEOUT_MAX (OverflowError): such a wait
        # (~292 years on Linux, ~49.7 days on Windows) is as good as None.
        if timeout is not None and timeout >= threading.TIMEOUT_MAX:
            timeout = None
        done = self._done
        return any(done.wait(part) for part in slices(timeout))

    def wait_exit(
        self,
        limit: float,
        *,
        exit_event: str,
        close_function: str,
        waiting_for: str,
        closed_context: str,
        described: float | None = None,
    ) -> dict[str, Any]:
        """Wait for the exit event; returns (a copy of) its status document.

        Raises ``HCS_E_OPERATION_TIMEOUT`` (``function=exit_event``) after ``limit`` seconds,
        ``HCS_E_SERVICE_DISCONNECT`` when vmcompute disconnected, and ``E_HANDLE``
        (``function=close_function``, ``context=closed_context``) when the handle was closed.
        """
        if not self.wait(limit):
            shown = limit if described is None else described  # the caller's whole limit
            raise errors.error_from_hresult(
                HCS_E_OPERATION_TIMEOUT,
                function=exit_event,
                context=f"waiting {shown:g} s for {waiting_for}",
            )
        if self.exited:
            return dict(self.exit_status or {})
        if self.disconnected:
            raise errors.error_from_hresult(
                HCS_E_SERVICE_DISCONNECT,
                function="HcsEventServiceDisconnect",
                context=f"waiting for {waiting_for}",
            )
        raise errors.error_from_hresult(E_HANDLE, function=close_function, context=closed_context)

    def subscribe(self, sink: EventSink) -> int:
        with self._lock:
            token = self._next_token
            self._next_token += 1
            self._sinks[token] = sink
            return token

    def unsubscribe(self, token: int) -> None:
        with self._lock:
            self._sinks.pop(token, None)


class Watched(ClosingContext):
    """What a compute system and a process share: a guarded handle and its :class:`Watch`."""

    _guard: HandleGuard
    _watch: Watch

    def _register(self) -> None:
        raise NotImplementedError

    def _registered(self: _W) -> _W:
        """:meth:`_register` for events; on failure close and re-raise.  Returns ``self``."""
        try:
            self._register()
        except BaseException:
            self.close()
            raise
        return self

    @property
    def closed(self) -> bool:
        return self._guard.closed

    @property
    def exited(self) -> bool:
        """True once the exit is known (``HcsEventSystemExited`` / ``HcsEventProcessExited``,
        or a process status query)."""
        return self._watch.exited

    @property
    def exit_status(self) -> dict[str, Any] | None:
        """The exit status document once known (``SystemExitStatus`` of a system,
        ``ProcessStatus`` of a process)."""
        return self._watch.exit_status

    def subscribe(self, sink: EventSink) -> int:
        """Deliver every event of this handle to ``sink`` (a callable, called on an HCS
        thread and must not block, or a :class:`queue.Queue`).  Returns a token."""
        return self._watch.subscribe(sink)

    def unsubscribe(self, token: int) -> None:
        self._watch.unsubscribe(token)


def set_event_callback(watch: Watch, guard: HandleGuard, function: str, *, context: str) -> int:
    """Register the process-wide event callback on ``guard``'s handle with a new context id
    that feeds ``watch``; returns the id.

    ``function`` is ``HcsSetComputeSystemCallback`` or ``HcsSetProcessCallback`` (both take
    ``handle, HCS_EVENT_OPTIONS, context, callback``: ``HcsSetComputeSystemCallback.md``,
    ``HcsSetProcessCallback.md``).  The id is unregistered only after the native close: HCS
    sends nothing past close.
    """
    event_id = events.register(watch.on_event)
    ticket = object()  # (HandleGuard.acquire: the call is ended once, whatever comes)
    try:
        handle = guard.acquire(function, ticket)
        hr = native("computecore", function)(
            handle, HcsEventOptions.NONE, event_id, events.callback()
        )
        check(int(hr), function=function, context=context)
    except BaseException:
        events.unregister(event_id)
        raise
    finally:
        try:
            guard.release(ticket)
        except BaseException:  # (a Ctrl+C at its entry): once more, a no-op if it ended
            guard.release(ticket)
            raise
    guard.on_released(lambda: events.unregister(event_id))
    return event_id


def wait_native_exit(
    guard: HandleGuard, function: str, timeout: float, *, context: str
) -> dict[str, Any]:
    """``HcsWaitForComputeSystemExit`` / ``HcsWaitForProcessExit`` (``handle, timeoutMs,
    &result``; Windows 10 2104 / Server 2022 and later only) → the exit status document."""
    out = ctypes.c_void_p(None)
    ticket = object()  # (HandleGuard.acquire: the call is ended once, whatever comes)
    try:
        hr = native("computecore", function)(
            guard.acquire(function, ticket), timeout_ms(timeout), ctypes.byref(out)
        )
    finally:
        try:
            guard.release(ticket)
        except BaseException:  # (a Ctrl+C at its entry): once more, a no-op if it ended
            guard.release(ticket)
            raise
    from hcs_sandbox.native.strings import take_hcs_string

    text = take_hcs_string(out)
    check(int(hr), function=function, result_document=text, context=context)
    status = optional_json(text, function=function)
    return status if isinstance(status, dict) else {}
