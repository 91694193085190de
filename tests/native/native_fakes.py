"""A tiny test-only backend made of CFUNCTYPE thunks, for the native layer's marshalling tests.

It is independent of the simulator: each test declares the few exports it needs, with the
C types the *simulator side* would use, and the binding is called through
``hcs_sandbox.native.api`` exactly as the hcs layer does.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import Any

from hcs_sandbox.native.loader import NativeUnavailable


class FakeBackend:
    """Resolves ``(dll, name)`` to CFUNCTYPE thunks registered with :meth:`add`."""

    name = "fake"
    simulated = True

    def __init__(self) -> None:
        self._thunks: dict[tuple[str, str], Any] = {}
        self.resolved: list[tuple[str, str]] = []
        # Strings "allocated" by the fake HCS, by address; freed ones move to self.freed.
        self.live: dict[int, ctypes.Array[ctypes.c_wchar]] = {}
        self.freed: list[tuple[str, int]] = []
        self.bad_frees: list[tuple[str, int]] = []
        self.closed_handles: list[int] = []
        self._install_allocators()

    def add(
        self,
        dll: str,
        name: str,
        restype: Any,
        argtypes: tuple[Any, ...],
        impl: Callable[..., Any],
    ) -> None:
        self._thunks[(dll, name)] = ctypes.CFUNCTYPE(restype, *argtypes)(impl)

    def resolve(self, dll: str, symbol: str) -> int:
        self.resolved.append((dll, symbol))
        thunk = self._thunks.get((dll, symbol))
        if thunk is None:
            raise NativeUnavailable(f"fake backend: {dll} has no export {symbol}")
        address = ctypes.cast(thunk, ctypes.c_void_p).value
        assert address
        return address

    # -- a fake heap shared by LocalFree / CoTaskMemFree ----------------------------------

    def alloc(self, text: str) -> int:
        buf = ctypes.create_unicode_buffer(text)
        address = ctypes.addressof(buf)
        self.live[address] = buf
        return address

    def _free(self, allocator: str, address: int | None) -> None:
        if not address:
            return
        if self.live.pop(address, None) is None:
            self.bad_frees.append((allocator, address))
        else:
            self.freed.append((allocator, address))

    def _install_allocators(self) -> None:
        def local_free(address: int | None) -> int | None:
            self._free("LocalFree", address)
            return None  # NULL = success

        def co_task_mem_free(address: int | None) -> None:
            self._free("CoTaskMemFree", address)

        def close_handle(handle: int | None) -> int:
            if not handle or handle in self.closed_handles:
                return 0
            self.closed_handles.append(handle)
            return 1

        self.add("kernel32.dll", "LocalFree", ctypes.c_void_p, (ctypes.c_void_p,), local_free)
        self.add("ole32.dll", "CoTaskMemFree", None, (ctypes.c_void_p,), co_task_mem_free)
        self.add("kernel32.dll", "CloseHandle", ctypes.c_int32, (ctypes.c_void_p,), close_handle)
