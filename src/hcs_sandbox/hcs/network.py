"""HCN networks and endpoints (computenetwork.dll), RAII.

Every HCN call is synchronous, returns an HRESULT and ends with ``PWSTR* ErrorRecord``: a
JSON error document freed with ``CoTaskMemFree`` (Microsoft
``virtualization/api/hcn/Reference/HcnCreateNetwork.md`` and siblings; freed in
``native.strings.take_hcn_string``) and fed to the error factory with ``hcn=True``.  Property
and enumeration strings are freed the same way (hcsshim ``hcn/hcn.go``).

Network and endpoint documents: ``virtualization/api/hcn/HNS_Schema.md``; the default
property query is the one hcsshim sends (``hcn/hcn.go`` ``defaultQuery``):
``{"SchemaVersion": {"Major": 2, "Minor": 0}, "Flags": 0}``.  Enumerations return a JSON array
of GUID strings.  ``HCN_E_ENDPOINT_NOT_FOUND`` on delete is success when asked (multipass deletes
endpoints explicitly, and an endpoint may already be gone).
"""

from __future__ import annotations

import ctypes
import functools
import logging
import threading
import uuid
import weakref
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar

from hcs_sandbox import errors
from hcs_sandbox.hcs._call import check, dumps, native, optional_json
from hcs_sandbox.hcs._handle import ClosingContext, HandleGuard
from hcs_sandbox.native.handles import close_held
from hcs_sandbox.native.types import GUID, HCN_NOTIFICATION_CALLBACK

__all__ = [
    "DEFAULT_QUERY",
    "Endpoint",
    "Network",
    "delete_endpoint",
    "delete_network",
    "enumerate_endpoints",
    "enumerate_networks",
    "register_service_callback",
    "unregister_service_callback",
]

_log = logging.getLogger("hcs_sandbox.hcs")

DEFAULT_QUERY: dict[str, Any] = {"SchemaVersion": {"Major": 2, "Minor": 0}, "Flags": 0}
Document = str | Mapping[str, Any]
GuidLike = str | uuid.UUID


def _guid(value: GuidLike) -> GUID:
    if isinstance(value, uuid.UUID):
        return GUID.from_uuid(value)
    return GUID.from_string(value)


def _take(ptr: ctypes.c_void_p) -> str | None:
    from hcs_sandbox.native.strings import take_hcn_string

    return take_hcn_string(ptr)


def _hcn_call(
    function: str,
    *args: object,
    doing: str,
    out: bool = False,
    made: ctypes.c_void_p | None = None,
) -> str | None:
    """Call an HCN function whose last argument is ``PWSTR* ErrorRecord``; with ``out`` the
    one before it is a ``PWSTR*`` result.  Frees both strings, raises on failure.  ``made``:
    the handle out parameter of a call that makes one, set to NULL when the call failed
    (what a failed call left there is no handle of ours: it is never closed)."""
    error_record = ctypes.c_void_p(None)
    result = ctypes.c_void_p(None)
    call_args: list[object] = list(args)
    if out:
        call_args.append(ctypes.byref(result))
    call_args.append(ctypes.byref(error_record))
    hr = native("computenetwork", function)(*call_args)
    if made is not None and errors.failed(int(hr)):
        made.value = None
    text = _take(result) if out else None
    record = _take(error_record)
    check(int(hr), function=function, result_document=record, context=doing, hcn=True)
    return text


def _close_hcn(function: str, held: ctypes.c_void_p) -> None:
    """``HcnCloseNetwork`` / ``HcnCloseEndpoint`` on what ``held`` still holds (set to NULL as
    it is called; a failure is logged: closing never raises)."""
    hr = close_held(held, native("computenetwork", function))
    if hr is not None and int(hr) < 0:
        _log.warning("%s failed: 0x%08X", function, int(hr) & 0xFFFFFFFF)


def _closed_error(what: str, function: str) -> errors.HcsError:
    """The error for a call on an HCN handle after it was closed."""
    return errors.error_from_hresult(
        errors.E_HANDLE,
        function=function,
        context=f"using {what} after it was closed",
        hcn=True,
    )


def _parse_dict(text: str | None, function: str) -> dict[str, Any]:
    value = optional_json(text, function=function)
    return value if isinstance(value, dict) else {}


def _parse_ids(text: str | None, function: str) -> list[str]:
    value = optional_json(text, function=function)
    if value is None:
        return []
    if not isinstance(value, list):
        raise errors.HcnError(
            f"{function} returned {type(value).__name__}, not a JSON array of ids",
            hresult=errors.ERROR_INVALID_DATA_HR,
            function=function,
        )
    return [str(item) for item in value]


_H = TypeVar("_H", bound="_HcnObject")
_T = TypeVar("_T")


def _finalize(guard: HandleGuard, what: str) -> None:
    """Safety net (weakref.finalize): release a handle the program forgot to close.  It holds
    the guard, never the object, and the guard closes natively once."""
    if not guard.closed:
        _log.debug("%s was not closed; closing its handle", what)
        guard.close()


class _HcnObject(ClosingContext):
    """An open HCN handle.  Subclasses name their kind and its four functions, which take
    the same arguments for networks and endpoints (``HcnOpenNetwork.md`` /
    ``HcnOpenEndpoint.md``, ``HcnQuery*Properties.md``, ``HcnModify*.md``, ``HcnClose*.md``).

    The handle is owned through a :class:`~hcs_sandbox.hcs._handle.HandleGuard`, as a
    ``ComputeSystem``'s is: every call that uses it counts as in flight, and :meth:`close`
    refuses new calls at once but runs ``HcnClose*`` only when the last call returned (a
    handle closed under a running call is used after it was freed)."""

    _kind: ClassVar[str] = "object"
    _open_function: ClassVar[str]
    _query_function: ClassVar[str]
    _modify_function: ClassVar[str]
    _close_function: ClassVar[str]

    def __init__(self, handle: int | ctypes.c_void_p, object_id: str) -> None:
        """``handle``: the handle, or the ``c_void_p`` the call that makes it writes it to
        (the guard then owns it from that moment: :meth:`_from_call`)."""
        self._id = object_id
        what = f"HCN {self._kind} {object_id}"
        self._guard = HandleGuard(
            handle,
            functools.partial(_close_hcn, self._close_function),
            what,
            closed_error=functools.partial(_closed_error, what),
        )
        self._finalizer = weakref.finalize(self, _finalize, self._guard, what)

    @classmethod
    def _from_call(cls: type[_H], function: str, guid: GUID, *args: object, doing: str) -> _H:
        """``function(*args, &handle, &errorRecord)``, the handle wrapped as ``cls``."""
        out = ctypes.c_void_p(None)
        # The owner first, its guard holding ``out``: the handle has an owner from the
        # call's return on, and the call and the close after a failure (or a Ctrl+C) are
        # in one try (review RV59).
        made = cls(out, str(guid))
        try:
            _hcn_call(function, *args, ctypes.byref(out), doing=doing, made=out)
            made._guard.bind(out.value or 0)
        except BaseException:
            made.close()  # what out still holds (NULL after a failed call)
            raise
        return made

    @classmethod
    def _open(cls: type[_H], object_id: GuidLike) -> _H:
        """``HcnOpen<Kind>(&id, &handle, &errorRecord)``."""
        guid = _guid(object_id)
        return cls._from_call(
            cls._open_function, guid, ctypes.byref(guid), doing=f"opening {cls._kind} {guid}"
        )

    @property
    def id(self) -> str:
        return self._id

    @property
    def handle(self) -> int:
        """The raw handle (not guarded: a call with it may race :meth:`close`; the
        binding's own calls go through :meth:`_call`)."""
        if self._guard.closed:
            raise self._guard.closed_error(f"Hcn{self._kind.capitalize()}")
        return self._guard.handle

    @property
    def closed(self) -> bool:
        return self._guard.closed

    def close(self) -> None:
        """Close the handle (idempotent; deferred while a call that uses it runs).  The HNS
        object itself persists."""
        if self._guard.closed:
            return
        self._guard.close()
        self._finalizer.detach()  # last (review RV61 F1: see ComputeSystem.close)

    def _call(self, function: str, use: Callable[[int], _T]) -> _T:
        """``use(handle)`` as a call in flight on this handle (raises once it is closed)."""
        return self._guard.call(function, use)

    def query(self, query: Document | None = None) -> dict[str, Any]:
        """``HcnQuery<Kind>Properties(handle, query, &properties, &errorRecord)`` → the
        object's document (an endpoint's has its IP and MAC)."""
        document = dumps(query if query is not None else DEFAULT_QUERY)
        text = self._call(
            self._query_function,
            lambda handle: _hcn_call(
                self._query_function,
                handle,
                document,
                doing=f"querying {self._kind} {self._id}",
                out=True,
            ),
        )
        return _parse_dict(text, self._query_function)

    def modify(self, settings: Document) -> None:
        """``HcnModify<Kind>(handle, settings, &errorRecord)``."""
        document = dumps(settings)
        self._call(
            self._modify_function,
            lambda handle: _hcn_call(
                self._modify_function,
                handle,
                document,
                doing=f"modifying {self._kind} {self._id}",
            ),
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._id}{' closed' if self.closed else ''}>"


class Network(_HcnObject):
    """An open ``HCN_NETWORK`` handle."""

    _kind = "network"
    _open_function = "HcnOpenNetwork"
    _query_function = "HcnQueryNetworkProperties"
    _modify_function = "HcnModifyNetwork"
    _close_function = "HcnCloseNetwork"

    @classmethod
    def create(cls, network_id: GuidLike, settings: Document) -> Network:
        """``HcnCreateNetwork(&id, settings, &network, &errorRecord)``."""
        guid = _guid(network_id)
        return cls._from_call(
            "HcnCreateNetwork",
            guid,
            ctypes.byref(guid),
            dumps(settings),
            doing=f"creating network {guid}",
        )

    @classmethod
    def open(cls, network_id: GuidLike) -> Network:
        """``HcnOpenNetwork(&id, &network, &errorRecord)``."""
        return cls._open(network_id)


class Endpoint(_HcnObject):
    """An open ``HCN_ENDPOINT`` handle."""

    _kind = "endpoint"
    _open_function = "HcnOpenEndpoint"
    _query_function = "HcnQueryEndpointProperties"
    _modify_function = "HcnModifyEndpoint"
    _close_function = "HcnCloseEndpoint"

    @classmethod
    def create(cls, network: Network, endpoint_id: GuidLike, settings: Document) -> Endpoint:
        """``HcnCreateEndpoint(network, &id, settings, &endpoint, &errorRecord)``."""
        guid = _guid(endpoint_id)
        document = dumps(settings)
        return network._call(
            "HcnCreateEndpoint",
            lambda handle: cls._from_call(
                "HcnCreateEndpoint",
                guid,
                handle,
                ctypes.byref(guid),
                document,
                doing=f"creating endpoint {guid} on network {network.id}",
            ),
        )

    @classmethod
    def open(cls, endpoint_id: GuidLike) -> Endpoint:
        """``HcnOpenEndpoint(&id, &endpoint, &errorRecord)``."""
        return cls._open(endpoint_id)


def _delete(function: str, kind: str, object_id: GuidLike, missing_ok: bool) -> None:
    guid = _guid(object_id)
    try:
        _hcn_call(function, ctypes.byref(guid), doing=f"deleting {kind} {guid}")
    except errors.HcnNotFoundError:
        if not missing_ok:
            raise


def delete_network(network_id: GuidLike, *, missing_ok: bool = False) -> None:
    """``HcnDeleteNetwork(&id, &errorRecord)``; ``missing_ok``: NETWORK_NOT_FOUND is success."""
    _delete("HcnDeleteNetwork", "network", network_id, missing_ok)


def delete_endpoint(endpoint_id: GuidLike, *, missing_ok: bool = False) -> None:
    """``HcnDeleteEndpoint(&id, &errorRecord)``; ``missing_ok``: ENDPOINT_NOT_FOUND
    (0x803B0002) is success."""
    _delete("HcnDeleteEndpoint", "endpoint", endpoint_id, missing_ok)


def _enumerate(function: str, what: str, query: Document | None) -> list[str]:
    text = _hcn_call(
        function,
        dumps(query if query is not None else DEFAULT_QUERY),
        doing=f"listing {what}",
        out=True,
    )
    return _parse_ids(text, function)


def enumerate_networks(query: Document | None = None) -> list[str]:
    """``HcnEnumerateNetworks(query, &networks, &errorRecord)`` → network ids."""
    return _enumerate("HcnEnumerateNetworks", "networks", query)


def enumerate_endpoints(query: Document | None = None) -> list[str]:
    """``HcnEnumerateEndpoints(query, &endpoints, &errorRecord)`` → endpoint ids."""
    return _enumerate("HcnEnumerateEndpoints", "endpoints", query)


# ---------------------------------------------------------------------------------------
# HNS service notifications (HcnRegisterServiceCallback.md): one process-wide thunk.
# ---------------------------------------------------------------------------------------

ServiceCallback = Callable[[int, int, str | None], None]
"""``callback(notification_type, status_hresult, data)`` on an HNS thread."""

_svc_lock = threading.Lock()
_svc_thunk: Any = None
_svc_callbacks: dict[int, ServiceCallback] = {}
_svc_next = 1


def _on_service_notification(
    notification: int, context: int | None, status: int, data: int | None
) -> None:
    try:
        text = ctypes.wstring_at(data) if data else None
        cb = _svc_callbacks.get(int(context or 0))
        if cb is not None:
            cb(int(notification), int(status) & 0xFFFFFFFF, text)
    except BaseException:
        try:
            _log.exception("HCN service callback failed")
        except BaseException:
            pass


def register_service_callback(callback: ServiceCallback) -> tuple[int, int]:
    """``HcnRegisterServiceCallback``; returns a registration to pass to
    :func:`unregister_service_callback`."""
    global _svc_thunk, _svc_next
    with _svc_lock:
        if _svc_thunk is None:
            _svc_thunk = HCN_NOTIFICATION_CALLBACK(_on_service_notification)
        context = _svc_next
        _svc_next += 1
        _svc_callbacks[context] = callback
    out = ctypes.c_void_p(None)
    hr = native("computenetwork", "HcnRegisterServiceCallback")(
        _svc_thunk, context, ctypes.byref(out)
    )
    try:
        check(
            int(hr),
            function="HcnRegisterServiceCallback",
            context="watching the Host Network Service",
            hcn=True,
        )
    except BaseException:
        with _svc_lock:
            _svc_callbacks.pop(context, None)
        raise
    return (out.value or 0, context)


def unregister_service_callback(registration: tuple[int, int]) -> None:
    """``HcnUnregisterServiceCallback``, then forget the Python callback."""
    handle, context = registration
    try:
        hr = native("computenetwork", "HcnUnregisterServiceCallback")(handle)
        check(
            int(hr),
            function="HcnUnregisterServiceCallback",
            context="stopping the Host Network Service watch",
            hcn=True,
        )
    finally:
        with _svc_lock:
            _svc_callbacks.pop(context, None)
