"""The ONE place where strings that HCS/HCN allocated are read and freed.

Every ``PWSTR*`` out-parameter is declared ``POINTER(c_void_p)`` (``native/prototypes.py``):
the caller passes ``ctypes.byref(ptr)`` with ``ptr = ctypes.c_void_p()`` and hands ``ptr`` to
:func:`take_string`, which reads the UTF-16 text and frees the buffer with the allocator the
API documents:

- computecore and computestorage out-strings (result documents, ``HcsGetServiceProperties``,
  ``HcsGetLayerVhdMountPath``) → ``LocalFree`` (MicrosoftDocs/Virtualization-Documentation
  ``virtualization/api/hcs/Reference/HcsWaitForOperationResult.md``,
  ``HcsGetLayerVhdMountPath.md``: "release the returned string buffer using LocalFree");
- computenetwork out-strings (``ErrorRecord``, ``Properties``, enumerations) →
  ``CoTaskMemFree`` (``virtualization/api/hcn/Reference/HcnCreateNetwork.md`` and siblings).

The buffer is freed exactly once, even when reading it raised, and the ``c_void_p`` is set
to NULL afterwards so a second :func:`take_string` on it returns None instead of freeing
again.
"""

from __future__ import annotations

import ctypes
from typing import Any, Literal

__all__ = ["Allocator", "take_hcn_string", "take_hcs_string", "take_string"]

Allocator = Literal["local", "cotaskmem"]

# hcs_sandbox.native.api, imported on first use (not at import: this module is imported by
# modules that never free a string); a global read instead of an import statement per free.
_api: Any = None


def _import_api() -> Any:
    global _api
    from hcs_sandbox.native import api

    _api = api
    return api


def _free(address: int, allocator: Allocator) -> None:
    api = _api or _import_api()
    if allocator == "local":
        # HLOCAL LocalFree(HLOCAL): NULL on success.  A failure leaves nothing to do (the
        # buffer is HCS's; retrying could double-free), so the return value is not checked.
        api.kernel32.LocalFree(address)
    elif allocator == "cotaskmem":
        api.ole32.CoTaskMemFree(address)
    else:  # pragma: no cover - guarded by the Literal type and a test
        raise ValueError(f"unknown allocator {allocator!r}; expected 'local' or 'cotaskmem'")


def take_string(ptr: ctypes.c_void_p | int | None, allocator: Allocator) -> str | None:
    """Read the UTF-16 string at ``ptr`` and free it with ``allocator``; NULL → None.

    ``ptr`` is the ``c_void_p`` an out-parameter was written into (it is reset to NULL after
    the free), or a raw address.  The free runs even when reading raised.
    """
    if allocator not in ("local", "cotaskmem"):
        raise ValueError(f"unknown allocator {allocator!r}; expected 'local' or 'cotaskmem'")
    address = ptr.value if isinstance(ptr, ctypes.c_void_p) else ptr
    if not address:
        return None
    try:
        return ctypes.wstring_at(address)
    finally:
        if isinstance(ptr, ctypes.c_void_p):
            ptr.value = None
        _free(address, allocator)


def take_hcs_string(ptr: ctypes.c_void_p | int | None) -> str | None:
    """:func:`take_string` for computecore / computestorage results (``LocalFree``)."""
    # The common case inlined (one frame instead of three): a c_void_p out-slot, freed with
    # LocalFree exactly as take_string(ptr, "local") does.
    if not isinstance(ptr, ctypes.c_void_p):
        return take_string(ptr, "local")
    address = ptr.value
    if not address:
        return None
    try:
        return ctypes.wstring_at(address)
    finally:
        ptr.value = None
        _free(address, "local")


def take_hcn_string(ptr: ctypes.c_void_p | int | None) -> str | None:
    """:func:`take_string` for computenetwork results and ErrorRecords (``CoTaskMemFree``)."""
    return take_string(ptr, "cotaskmem")
