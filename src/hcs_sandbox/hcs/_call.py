"""The one place where the hcs layer reaches a native function and checks its HRESULT.

Everything in :mod:`hcs_sandbox.hcs` calls HCS through :func:`native` (to get the ctypes
function) and :func:`check` (to turn a failing HRESULT into the error tree).  A missing
DLL or export (:class:`hcs_sandbox.native.loader.NativeUnavailable`) becomes
:class:`hcs_sandbox.errors.HcsUnavailableError`, carrying the loader's remedy.

HRESULT rule: a value with the severity bit set is a failure (``FAILED(hr)``, winerror.h);
hcsshim ``internal/interop/interop.go`` applies the same test.
"""

from __future__ import annotations

import ctypes
import json
from collections.abc import Callable, Mapping
from typing import Any

from hcs_sandbox import errors
from hcs_sandbox.native import loader as _loader
from hcs_sandbox.native.loader import NativeUnavailable, get_backend

__all__ = [
    "HRESULT_FROM_WIN32",
    "check",
    "dumps",
    "native",
    "optional_json",
    "wbuf",
]

NativeFunction = Callable[..., Any]

# The dll attribute names of hcs_sandbox.native.api (one lazy namespace per DLL).
_DLL_FILES = {
    "computecore": "computecore.dll",
    "computestorage": "computestorage.dll",
    "computenetwork": "computenetwork.dll",
    "virtdisk": "virtdisk.dll",
    "kernel32": "kernel32.dll",
    "ole32": "ole32.dll",
}


#: (dll, name) -> (backend, function): the functions already resolved, each with the
#: backend it came from.  A hit whose backend is still the chosen one is one dict lookup
#: and one identity test; after ``reset_backend``/``use_simulator`` (a new backend object)
#: the entry is resolved again.  Entries are replaced whole (a tuple), so threads need no
#: lock: at worst two threads resolve the same function once each.
_RESOLVED: dict[tuple[str, str], tuple[object, NativeFunction]] = {}


def native(dll: str, name: str) -> NativeFunction:
    """The ctypes function ``name`` of ``dll`` (``"computecore"``, ``"virtdisk"``, ...).

    Raises :class:`~hcs_sandbox.errors.HcsUnavailableError` when the backend cannot be
    chosen, the DLL cannot be loaded or the export is missing.
    """
    hit = _RESOLVED.get((dll, name))
    if hit is not None and hit[0] is _loader._backend:  # loader.chosen_backend(), inlined
        return hit[1]
    try:
        from hcs_sandbox.native import api

        backend = get_backend()  # before resolving: a stale pairing can only miss later
        namespace = getattr(api, dll)
        func: NativeFunction = getattr(namespace, name)
        _RESOLVED[(dll, name)] = (backend, func)
        return func
    except NativeUnavailable as exc:
        raise errors.HcsUnavailableError(
            exc.message if getattr(exc, "message", None) else str(exc),
            remedy=exc.remedy,
        ) from exc
    except AttributeError as exc:  # a name the binding does not declare: a bug, say so
        raise errors.HcsUnavailableError(
            f"HCS unavailable: the binding has no function {_DLL_FILES.get(dll, dll)}!{name}",
            remedy="this is a bug in hcs-sandbox; please report it",
        ) from exc


def HRESULT_FROM_WIN32(code: int) -> int:
    """``HRESULT_FROM_WIN32`` (winerror.h): ``0x8007xxxx`` for a non-zero Win32 error."""
    code &= 0xFFFFFFFF
    if code == 0 or code & 0x80000000:
        return code
    return (code & 0x0000FFFF) | (errors.FACILITY_WIN32 << 16) | 0x80000000


def check(
    hr: int,
    *,
    function: str,
    result_document: str | Mapping[str, Any] | None = None,
    context: str | None = None,
    hcn: bool = False,
) -> None:
    """Raise the error-tree exception for ``hr`` when it is a failure; return otherwise."""
    hr &= 0xFFFFFFFF
    if hr & 0x80000000:  # errors.failed(hr), inlined: this runs after every call
        raise errors.error_from_hresult(
            hr,
            function=function,
            result_document=result_document,
            context=context,
            hcn=hcn,
        )


#: What ``json.dumps(document, separators=(",", ":"))`` builds on every call (any non-default
#: argument makes it make an encoder), made once; ``encode`` keeps no state between calls.
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"))


def dumps(document: str | Mapping[str, Any] | None) -> str | None:
    """A JSON document as the ``PCWSTR`` HCS takes: ``None`` stays NULL, a str is passed
    as it is (already JSON), a mapping goes through ``json.dumps``."""
    if document is None or isinstance(document, str):
        return document
    return _COMPACT_JSON.encode(document)


def wbuf(text: str | None) -> ctypes.c_wchar_p | None:
    """A ``PCWSTR`` input whose wide-string buffer stays alive as long as we hold it.

    A ``c_wchar_p`` made from a str owns the ``wchar_t`` copy ctypes makes of it (kept in
    the object, freed with it), so it can be handed to an asynchronous call and kept until
    HCS completes it.  Not ``create_unicode_buffer``: with a 2-byte ``wchar_t`` (Windows) it
    sizes the buffer with a Python generator over every character of the document."""
    return None if text is None else ctypes.c_wchar_p(text)


def optional_json(text: str | None, *, function: str) -> Any:
    """Parse a result document HCS returned on success; ``None`` for an empty one."""
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise errors.HcsError(
            f"{function} returned a document that is not JSON: {text[:200]!r}",
            hresult=errors.ERROR_INVALID_DATA_HR,
            function=function,
            remedy="this is a bug in hcs-sandbox or HCS; please report it",
        ) from exc


def new_out_string() -> ctypes.c_void_p:
    """A ``PWSTR`` out-slot (``POINTER(c_void_p)`` in the prototypes)."""
    return ctypes.c_void_p(None)
