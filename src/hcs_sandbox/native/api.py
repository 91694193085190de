"""Lazy function proxies: ``api.computecore.HcsStartComputeSystem(...)``.

One namespace per DLL (:data:`computecore`, :data:`computestorage`, :data:`computenetwork`,
:data:`virtdisk`, :data:`kernel32`, :data:`ole32`).  Reading an attribute looks the name up in
the prototype table (``native/prototypes.py``), asks the backend (``native/loader.py``) for
its address, and returns ``FUNCTYPE(restype, *argtypes)(address)``: the ctypes function,
built on first access and cached.  The cache belongs to one backend object; when the backend
changes (``use_simulator`` / ``reset_backend``) the next access builds the function again.

- A name that is not in the table (or is in another DLL's part of it) is an
  :class:`AttributeError`: a bug in the caller, not a host problem.
- A missing DLL or export raises :class:`~hcs_sandbox.native.loader.NativeUnavailable`
  naming ``dll!export`` and the Windows version or feature that provides it.

Nothing is loaded at import time.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from hcs_sandbox.native import loader
from hcs_sandbox.native.loader import Backend, NativeUnavailable, get_backend
from hcs_sandbox.native.prototypes import DLLS, Prototype, by_dll, lookup
from hcs_sandbox.native.types import FUNCTYPE

if TYPE_CHECKING:
    from ctypes import _CFunctionType

__all__ = [
    "DllNamespace",
    "backend_name",
    "computecore",
    "computenetwork",
    "computestorage",
    "function",
    "is_simulated",
    "kernel32",
    "ole32",
    "virtdisk",
]


def _export_remedy(proto: Prototype, backend: Backend) -> str:
    if backend.simulated:
        return (
            f"the HCS simulator does not provide {proto.dll}!{proto.name}; this is a bug in "
            "hcs-sandbox's simulator, please report it"
        )
    if proto.required:
        return (
            f"{proto.name} needs {proto.min_os} or later; update Windows or enable the "
            "'Virtual Machine Platform' / Hyper-V features"
        )
    return (
        f"{proto.name} is an optional export that needs {proto.min_os} or later; the feature "
        "that uses it is unavailable on this host"
    )


class DllNamespace:
    """The functions of one DLL, as attributes (``computecore.HcsCreateOperation``)."""

    def __init__(self, dll: str) -> None:
        if dll not in DLLS:
            raise ValueError(f"unknown DLL {dll!r}; known: {', '.join(DLLS)}")
        self._dll = dll
        self._lock = threading.Lock()
        # The backend the cached functions came from; replaced wholesale when it changes.
        self._backend: Backend | None = None
        self._functions: dict[str, _CFunctionType] = {}
        # (backend, functions) read without the lock by the fast path of __getattr__: one
        # tuple, replaced whole, so a reader sees a backend and ITS functions, never a mix.
        self._cache: tuple[Backend | None, dict[str, _CFunctionType]] = (None, {})

    @property
    def dll(self) -> str:
        """The DLL file name, e.g. ``"computecore.dll"``."""
        return self._dll

    def __repr__(self) -> str:
        return f"<hcs_sandbox.native.api namespace {self._dll}>"

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *by_dll(self._dll)})

    def prototype(self, name: str) -> Prototype:
        """The table entry for ``name``; AttributeError when this DLL has no such entry."""
        proto = lookup(name)
        if proto is None:
            raise AttributeError(
                f"{self._dll} has no function {name!r} in hcs-sandbox's prototype table "
                "(hcs_sandbox/native/prototypes.py)"
            )
        if proto.dll != self._dll:
            raise AttributeError(
                f"{name} is exported by {proto.dll}, not {self._dll}; use "
                f"hcs_sandbox.native.api.{proto.dll.removesuffix('.dll')}.{name}"
            )
        return proto

    def __getattr__(self, name: str) -> _CFunctionType:
        # Fast path, lock-free: a function already built for the current backend (only
        # validated names are ever cached, so the prototype checks below are implied).
        backend, functions = self._cache
        if backend is not None and backend is loader._backend:
            func = functions.get(name)
            if func is not None:
                return func
        if name.startswith("_"):
            raise AttributeError(name)
        proto = self.prototype(name)
        backend = get_backend()
        with self._lock:
            if self._backend is not backend:
                self._functions = {}
                self._backend = backend
            func = self._functions.get(name)
            if func is None:
                func = _build(proto, backend)
                self._functions[name] = func
                self._cache = (backend, self._functions)
            return func


def _build(proto: Prototype, backend: Backend) -> _CFunctionType:
    try:
        address = backend.resolve(proto.dll, proto.name)
    except NativeUnavailable as exc:
        # The prototype table knows the export's minimum OS: a more precise remedy than the
        # backend's generic one.  DLL-level failures keep the loader's remedy.
        if exc.remedy is None or getattr(exc, "export", None):
            exc.remedy = _export_remedy(proto, backend)
        raise
    except (LookupError, AttributeError, OSError) as exc:
        # A backend that reports a missing symbol its own way (KeyError, AttributeError...).
        raise NativeUnavailable(
            f"HCS unavailable on this host: {proto.dll} has no export {proto.name} ({exc})",
            remedy=_export_remedy(proto, backend),
        ) from exc
    if not address:
        raise NativeUnavailable(
            f"HCS unavailable on this host: {proto.dll}!{proto.name} resolved to NULL",
            remedy=_export_remedy(proto, backend),
        )
    prototype = FUNCTYPE(proto.restype, *proto.argtypes, use_last_error=proto.use_last_error)
    return prototype(address)


def function(dll: str, name: str) -> _CFunctionType:
    """``function("computecore.dll", "HcsStartComputeSystem")``: the same as the attribute."""
    namespace = _NAMESPACES.get(dll.lower()) or _NAMESPACES.get(dll.lower() + ".dll")
    if namespace is None:
        raise AttributeError(f"unknown DLL {dll!r}; known: {', '.join(DLLS)}")
    return getattr(namespace, name)  # type: ignore[no-any-return]


def is_simulated() -> bool:
    """True when native calls go to the HCS simulator (chooses the backend if needed)."""
    return get_backend().simulated


def backend_name() -> str:
    """``"windows"`` or ``"simulator"`` (chooses the backend if needed)."""
    return get_backend().name


computecore = DllNamespace("computecore.dll")
computestorage = DllNamespace("computestorage.dll")
computenetwork = DllNamespace("computenetwork.dll")
virtdisk = DllNamespace("virtdisk.dll")
kernel32 = DllNamespace("kernel32.dll")
ole32 = DllNamespace("ole32.dll")

_NAMESPACES: dict[str, DllNamespace] = {
    ns.dll: ns for ns in (computecore, computestorage, computenetwork, virtdisk, kernel32, ole32)
}
