"""Where the native functions come from: the real Windows DLLs, or the simulator.

A *backend* turns ``(dll, symbol)`` into the address of a C function.  The binding then
builds a ctypes prototype (``WINFUNCTYPE`` on Windows, ``CFUNCTYPE`` elsewhere) and calls
``prototype(address)``.  The real DLLs and the simulator are reached through exactly the
same path: only the address differs.

Selection (lazy, on first use, never at import time):

- ``HCS_SANDBOX_SIMULATOR=1`` (or an absolute directory: the simulator's state directory;
  ``0``/``false``/``no``/``off`` mean no: :mod:`hcs_sandbox._simenv`), or
  :func:`use_simulator` (the CLI's ``--simulator`` flag): the simulator, on any OS;
- otherwise on Windows: ``WinDLL(name)`` for each DLL, loaded on first use;
- otherwise: :class:`NativeUnavailable`, saying that HCS exists only on Windows and how to
  ask for the simulator.

This module is the native layer: it raises :class:`NativeUnavailable` (an ``OSError``);
the hcs layer maps it to :class:`hcs_sandbox.errors.HcsUnavailableError`.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
from typing import Protocol

from hcs_sandbox import _simenv

__all__ = [
    "DLL_REMEDIES",
    "ENV_SIMULATOR",
    "Backend",
    "NativeUnavailable",
    "chosen_backend",
    "get_backend",
    "reset_backend",
    "simulator_requested",
    "use_simulator",
]

from hcs_sandbox._simenv import ENV_SIMULATOR

# What to enable when a DLL is missing (Microsoft docs: HCS needs Windows 10 1809+ with the
# Hyper-V / Virtual Machine Platform / Containers features).
DLL_REMEDIES: dict[str, str] = {
    "computecore.dll": (
        "enable 'Virtual Machine Platform' (or Hyper-V) and 'Windows Sandbox' in Windows "
        "Features; Windows 10 1809 or later is required"
    ),
    "computestorage.dll": (
        "enable 'Virtual Machine Platform' (or Hyper-V) and 'Containers' in Windows Features"
    ),
    "computenetwork.dll": (
        "enable Hyper-V or 'Virtual Machine Platform'; the hns service provides it"
    ),
    "virtdisk.dll": "virtdisk.dll ships with Windows 8 and later; repair the Windows install",
    "kernel32.dll": "kernel32.dll is part of every Windows",
    "ole32.dll": "ole32.dll is part of every Windows",
}


#: The remedy's first part when a 32-bit Python cannot load an HCS DLL.
BITNESS_REMEDY = (
    "this is a 32-bit Python: Windows redirects its System32 to SysWOW64 (SysArm32 on "
    'ARM; Microsoft, "File System Redirector"), which may lack the HCS DLLs; use a 64-bit '
    "Python"
)


def _is_32bit_process() -> bool:
    return ctypes.sizeof(ctypes.c_void_p) == 4


def _load_remedy(dll: str) -> str | None:
    """What to do when ``dll`` cannot be loaded: :data:`DLL_REMEDIES`'s feature to enable,
    after :data:`BITNESS_REMEDY` in a 32-bit process: "The %windir%\\System32 directory is
    reserved for 64-bit applications on 64-bit Windows ... whenever a 32-bit application
    attempts to access %windir%\\System32 ... the access is redirected" (learn.microsoft.com
    windows/win32/winprog64/file-system-redirector).  Whether SysWOW64 holds 32-bit HCS DLLs
    is not documented: the feature remedy follows."""
    remedy = DLL_REMEDIES.get(dll)
    if _is_32bit_process() and dll not in ("kernel32.dll", "ole32.dll"):
        return BITNESS_REMEDY + (f"; otherwise {remedy}" if remedy else "")
    return remedy


class NativeUnavailable(OSError):
    """A DLL or an export is missing, or HCS does not exist on this OS."""

    def __init__(
        self, message: str, *, remedy: str | None = None, export: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.remedy = remedy
        # The missing export's name when the DLL loaded but lacks it (None: DLL/OS problem).
        self.export = export


class Backend(Protocol):
    """Resolves native symbols to function addresses."""

    @property
    def name(self) -> str:
        """``"windows"`` or ``"simulator"``."""
        ...

    @property
    def simulated(self) -> bool:
        """True when calls go to the simulator rather than to Windows."""
        ...

    @property
    def identity(self) -> str:
        """Which HCS host this is: ``"windows"``, or ``"simulator:<its state directory>"``
        (records made through one host are not judged by another: see the sandbox layer)."""
        ...

    def resolve(self, dll: str, symbol: str) -> int:
        """The address of ``symbol`` in ``dll``; raises :class:`NativeUnavailable`."""
        ...


class WindowsBackend:
    """The real DLLs, each loaded with ``WinDLL`` on first use."""

    name = "windows"
    simulated = False
    identity = "windows"

    def __init__(self) -> None:
        self._dlls: dict[str, ctypes.CDLL] = {}
        self._lock = threading.Lock()

    def _load(self, dll: str) -> ctypes.CDLL:
        with self._lock:
            lib = self._dlls.get(dll)
            if lib is None:
                if sys.platform != "win32":  # pragma: no cover - guarded by get_backend
                    raise NativeUnavailable(f"{dll} exists only on Windows")
                try:
                    lib = ctypes.WinDLL(dll, use_last_error=True)
                except OSError as exc:
                    raise NativeUnavailable(
                        f"HCS unavailable on this host: {dll} could not be loaded ({exc})",
                        remedy=_load_remedy(dll),
                    ) from exc
                self._dlls[dll] = lib
            return lib

    def resolve(self, dll: str, symbol: str) -> int:
        lib = self._load(dll)
        try:
            func = getattr(lib, symbol)
        except AttributeError as exc:
            raise NativeUnavailable(
                f"HCS unavailable on this host: {dll} has no export {symbol}",
                remedy="this Windows build is too old for this feature; Windows 10 1809+ or "
                "Server 2019+ is required, and some calls need newer builds",
                export=symbol,
            ) from exc
        address = ctypes.cast(func, ctypes.c_void_p).value
        if not address:  # pragma: no cover - a found export always has an address
            raise NativeUnavailable(f"{dll}!{symbol} resolved to NULL")
        return address


_backend: Backend | None = None
_forced_simulator: str | None = None  # None: not forced; "": default state dir; else a path
_backend_lock = threading.Lock()


def simulator_requested() -> bool:
    """True when the simulator was asked for, by :func:`use_simulator` or the environment."""
    return _forced_simulator is not None or _simenv.asked()


def use_simulator(state_dir: str | os.PathLike[str] | None = None) -> None:
    """Ask for the simulator (the CLI's ``--simulator``); takes effect for the next backend.

    ``state_dir`` is where the simulated HCS keeps its compute systems between processes.
    """
    global _forced_simulator, _backend
    with _backend_lock:
        _forced_simulator = os.fspath(state_dir) if state_dir is not None else ""
        _backend = None


def reset_backend() -> None:
    """Forget the chosen backend and any :func:`use_simulator` request (tests use this)."""
    global _forced_simulator, _backend
    with _backend_lock:
        _forced_simulator = None
        _backend = None


def _simulator_state_dir() -> str | None:
    if _forced_simulator:
        return _forced_simulator
    try:
        return _simenv.setting() or None
    except _simenv.SimulatorSettingError as exc:
        raise NativeUnavailable(str(exc), remedy=exc.remedy) from exc


def chosen_backend() -> Backend | None:
    """The backend already chosen for this process, or None (never chooses one)."""
    return _backend


def get_backend() -> Backend:
    """The backend for this process, chosen on first use (see the module docstring)."""
    global _backend
    backend = _backend
    if backend is not None:
        return backend
    with _backend_lock:
        if _backend is None:
            if simulator_requested():
                from hcs_sandbox.sim.backend import SimulatorBackend

                _backend = SimulatorBackend(_simulator_state_dir())
            elif sys.platform == "win32":
                _backend = WindowsBackend()
            else:
                raise NativeUnavailable(
                    f"HCS unavailable on this host: the Host Compute Service exists only on "
                    f"Windows 10 1809+ and Server 2019+, and this is {sys.platform}",
                    remedy=f"to use the built-in HCS simulator: set {ENV_SIMULATOR}=1, pass "
                    "--simulator (CLI) or call hcs_sandbox.use_simulator() (Python)",
                )
        return _backend
