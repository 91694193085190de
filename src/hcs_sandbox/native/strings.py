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

The buffer is freed exactly once, even when reading it raised or a Ctrl+C came: the
``c_void_p`` is set to NULL right before the native free, with no point between where
CPython runs a signal handler, so a second :func:`take_string` on it (a clean-up's) returns
None instead of freeing again, and frees it when the first did not.
"""

from __future__ import annotations

import ctypes
from typing import Any, Literal

__all__ = ["Allocator", "take_hcn_string", "take_hcs_string", "take_string"]

Allocator = Literal["local", "cotaskmem"]

#: (backend, the free function) of each allocator: the native function resolved for that
#: backend object, as :data:`hcs_sandbox.native.handles._closer` (one identity test per free
#: instead of ``api.kernel32.LocalFree``, a ``DllNamespace.__getattr__`` call).  Replaced
#: whole (a tuple), so threads need no lock; a new backend misses and resolves again.
_local_free: tuple[object, Any] = (None, None)
_cotaskmem_free: tuple[object, Any] = (None, None)
_loader: Any = None  # hcs_sandbox.native.loader, imported on the first resolve


def _resolve_free(allocator: Allocator) -> Any:
    """``kernel32!LocalFree`` or ``ole32!CoTaskMemFree`` of the chosen backend (chosen now
    if need be), remembered with that backend."""
    global _local_free, _cotaskmem_free, _loader
    from hcs_sandbox.native import api, loader

    _loader = loader
    backend = loader.get_backend()  # before resolving: a stale pairing can only miss later
    if allocator == "local":
        # HLOCAL LocalFree(HLOCAL): NULL on success.  A failure leaves nothing to do (the
        # buffer is HCS's; retrying could double-free), so the return value is not checked.
        func = api.kernel32.LocalFree
        _local_free = (backend, func)
    elif allocator == "cotaskmem":
        func = api.ole32.CoTaskMemFree
        _cotaskmem_free = (backend, func)
    else:  # pragma: no cover - guarded by the Literal type and a test
        raise ValueError(f"unknown allocator {allocator!r}; expected 'local' or 'cotaskmem'")
    return func


def take_string(ptr: ctypes.c_void_p | int | None, allocator: Allocator) -> str | None:
    """Read the UTF-16 string at ``ptr`` and free it with ``allocator``; NULL → None.

    ``ptr`` is the ``c_void_p`` an out-parameter was written into (it is reset to NULL after
    the free), or a raw address.  The free runs even when reading raised.

    The ``c_void_p`` is set to NULL right before the native free is called, with nothing in
    between where CPython runs a signal handler (a Python call, the return of a C call, a
    backward jump; the free function is resolved before): a Ctrl+C anywhere in here leaves
    it either still holding the string, not freed yet, or NULL, freed, so a clean-up that
    frees what the slot still holds frees it once, never twice, and never leaks it.
    """
    if allocator not in ("local", "cotaskmem"):
        raise ValueError(f"unknown allocator {allocator!r}; expected 'local' or 'cotaskmem'")
    address = ptr.value if isinstance(ptr, ctypes.c_void_p) else ptr
    if not address:
        return None
    try:
        return ctypes.wstring_at(address)
    finally:
        backend, free = _local_free if allocator == "local" else _cotaskmem_free
        if backend is None or backend is not _loader._backend:
            free = _resolve_free(allocator)
        if isinstance(ptr, ctypes.c_void_p):
            ptr.value = None  # and the free at once: no handler point in between (above)
        free(address)


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
        backend, free = _local_free
        if backend is None or backend is not _loader._backend:
            free = _resolve_free("local")
        ptr.value = None  # and LocalFree at once: no handler point in between (take_string)
        free(address)


def take_hcn_string(ptr: ctypes.c_void_p | int | None) -> str | None:
    """:func:`take_string` for computenetwork results and ErrorRecords (``CoTaskMemFree``)."""
    return take_string(ptr, "cotaskmem")
