"""The one process-wide HCS event callback and its dispatch to Python subscribers.

HCS calls an ``HCS_EVENT_CALLBACK`` (``void CALLBACK cb(HCS_EVENT* event, void* context)``,
Microsoft ``HCS_EVENT_CALLBACK.md``) on its own thread-pool threads for every compute system or
process handle the callback was registered on (``HcsSetComputeSystemCallback``,
``HcsSetProcessCallback``).  Following hcsshim (``internal/hcs/v2/notification.go``):

- there is ONE callback object for the whole process, created lazily and never freed (a
  ctypes thunk that HCS may still call must stay alive);
- the ``void*`` context HCS hands back is an integer id, never a Python object address;
  :func:`register` maps ids to subscribers and :func:`unregister` removes them after the
  handle was closed (hcsshim: "HCS guarantees no further callbacks fire past close");
- ``EventData`` is copied inside the callback (its lifetime after the callback returns is
  undocumented; hcsshim copies it immediately);
- nothing raises into C: every exception is logged and swallowed.
"""

from __future__ import annotations

import ctypes
import itertools
import json
import threading
from collections.abc import Callable

from hcs_sandbox._frozen import Frozen
from hcs_sandbox.hcs._log import get_logger
from hcs_sandbox.native.types import HCS_EVENT, HCS_EVENT_CALLBACK, HcsEventType

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~5 ms at start-up
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "EVENT_NAMES",
    "Event",
    "Subscriber",
    "callback",
    "in_callback",
    "register",
    "registered_count",
    "unregister",
]

_log = get_logger("hcs_sandbox.hcs.events")

# HCS_EVENT_TYPE names (Microsoft HCS_EVENT_TYPE.md; group values from ComputeDefs.h).
EVENT_NAMES: dict[int, str] = {
    HcsEventType.INVALID: "Invalid",
    HcsEventType.SYSTEM_EXITED: "SystemExited",
    HcsEventType.SYSTEM_CRASH_INITIATED: "SystemCrashInitiated",
    HcsEventType.SYSTEM_CRASH_REPORT: "SystemCrashReport",
    HcsEventType.SYSTEM_RDP_ENHANCED_MODE_STATE_CHANGED: "SystemRdpEnhancedModeStateChanged",
    HcsEventType.SYSTEM_SILO_JOB_CREATED: "SystemSiloJobCreated",
    HcsEventType.SYSTEM_GUEST_CONNECTION_CLOSED: "SystemGuestConnectionClosed",
    HcsEventType.PROCESS_EXITED: "ProcessExited",
    HcsEventType.OPERATION_CALLBACK: "OperationCallback",
    HcsEventType.SERVICE_DISCONNECT: "ServiceDisconnect",
    HcsEventType.GROUP_VM_LIFECYCLE: "GroupVmLifecycle",
    HcsEventType.GROUP_LIVE_MIGRATION: "GroupLiveMigration",
    HcsEventType.GROUP_OPERATION_INFO: "GroupOperationInfo",
}


class Event(Frozen):
    """One HCS event, copied out of the ``HCS_EVENT`` structure.

    Immutable and compared by value, as the ``@dataclass(frozen=True)`` it was (a plain
    class: ``dataclasses`` costs ~5 ms of every process importing the hcs layer).
    """

    _FIELDS = ("type", "data", "operation")
    __slots__ = _FIELDS
    __match_args__ = ("type", "data", "operation")

    type: int
    data: str | None
    operation: int | None

    def __init__(self, type: int, data: str | None, operation: int | None = None) -> None:
        put = object.__setattr__
        put(self, "type", type)
        put(self, "data", data)
        put(self, "operation", operation)

    @property
    def name(self) -> str:
        return EVENT_NAMES.get(self.type, f"0x{self.type:08X}")

    def json(self) -> Any:
        """``data`` parsed as JSON (``SystemExitStatus``, ``ProcessStatus``, ``CrashReport``),
        or None when empty or not JSON."""
        if not self.data:
            return None
        try:
            return json.loads(self.data)
        except ValueError:
            return None


Subscriber = Callable[[Event], None]


class _Delivering(threading.local):
    """Per thread: ``active`` while the thread delivers an HCS event.  The class default
    answers a thread that never delivered one without raising and catching an
    ``AttributeError`` (what ``getattr(local, "active", False)`` did on every close)."""

    active = False


_lock = threading.Lock()
_local = _Delivering()
_subscribers: dict[int, Subscriber] = {}
_ids = itertools.count(1)
_callback: Any = None  # the HCS_EVENT_CALLBACK thunk; kept for the life of the process


def _on_event(event_ptr: Any, context: int | None) -> None:
    """The C callback.  Copies the event, dispatches by context id, never raises."""
    try:
        if not event_ptr:
            return
        try:  # POINTER(HCS_EVENT) (the callback's declared type): read it once
            raw = event_ptr.contents
        except AttributeError:  # a raw address
            raw = ctypes.cast(event_ptr, ctypes.POINTER(HCS_EVENT)).contents
        data_ptr = raw.EventData
        data = ctypes.wstring_at(data_ptr) if data_ptr else None
        event = Event(int(raw.Type), data, raw.Operation or None)
        subscriber = _subscribers.get(int(context or 0))
        if subscriber is None:
            _log.debug("HCS event %s for unknown context %s dropped", event.name, context)
            return
        _local.active = True
        try:
            subscriber(event)
        finally:
            _local.active = False
    except BaseException:  # never raise into C
        try:
            _log.exception("HCS event callback failed")
        except BaseException:
            pass


def in_callback() -> bool:
    """True on a thread that is delivering an HCS event right now.

    Closing a handle from there must not block: hcsshim notes that HcsCloseComputeSystem
    drains in-flight callback invocations (``internal/hcs/v2/system.go`` ``CloseCtx``), which
    would wait for the very callback that is closing.
    """
    return _local.active


def callback() -> Any:
    """The process-wide ``HCS_EVENT_CALLBACK`` object (created on first use, never freed)."""
    global _callback
    cb = _callback
    if cb is None:
        with _lock:
            if _callback is None:
                _callback = HCS_EVENT_CALLBACK(_on_event)
            cb = _callback
    return cb


def register(subscriber: Subscriber) -> int:
    """Map a new context id to ``subscriber``; pass the id as the ``void* context``."""
    with _lock:
        event_id = next(_ids)
        _subscribers[event_id] = subscriber
    return event_id


def unregister(event_id: int | None) -> None:
    """Forget ``event_id`` (after its handle was closed).  No-op for None or unknown ids."""
    if event_id is None:
        return
    with _lock:
        _subscribers.pop(event_id, None)


def registered_count() -> int:
    """How many ids are registered (tests check that closes unregister)."""
    with _lock:
        return len(_subscribers)
