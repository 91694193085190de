"""OS handles that HCS hands to the caller: process stdio pipes.

``HCS_PROCESS_INFORMATION`` carries host-side pipe ``HANDLE``s owned by the caller
(MicrosoftDocs/Virtualization-Documentation ``virtualization/api/hcs/Reference/
HCS_PROCESS_INFORMATION.md``; hcsshim ``internal/hcs/utils.go makeOpenFiles`` wraps and
closes them itself).

- :func:`handle_to_fd` turns one into a file descriptor that ``os.read``/``open()`` accept:
  ``msvcrt.open_osfhandle`` on Windows (the descriptor then *owns* the handle: close the
  descriptor, never the handle); with the simulator the handles already are OS descriptors.
- :func:`close_handle` closes a handle that was not turned into a descriptor
  (``kernel32!CloseHandle``, learn.microsoft.com ``handleapi/nf-handleapi-closehandle``).
"""

from __future__ import annotations

import ctypes
import os
import sys

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~5 ms at start-up
if TYPE_CHECKING:
    from typing import Any

__all__ = ["close_handle", "close_held", "handle_to_fd"]

#: (backend, kernel32!CloseHandle): the function resolved for that backend object.  A close
#: whose backend is still the chosen one (``loader._backend``) calls it after one identity
#: test, instead of ``api.kernel32.CloseHandle`` (a ``DllNamespace.__getattr__`` call,
#: reached only after the attribute look-up raised and caught an ``AttributeError``).  A new
#: backend (``reset_backend``/``use_simulator``) misses and resolves again.  Replaced whole
#: (a tuple), so threads need no lock: at worst two threads resolve it once each.
_closer: tuple[object, Any] = (None, None)
_loader: Any = None  # hcs_sandbox.native.loader, imported on the first resolve


def handle_to_fd(handle: int, *, readable: bool) -> int:
    """A file descriptor for ``handle``; ``readable`` for stdout/stderr, not for stdin.

    Raises ``ValueError`` for a NULL handle (the pipe was not requested).
    """
    if not handle:
        raise ValueError(
            "NULL process pipe handle: the process was created without that pipe "
            "(set CreateStdInPipe/CreateStdOutPipe/CreateStdErrPipe in ProcessParameters)"
        )
    if sys.platform == "win32":
        import msvcrt

        flags = (os.O_RDONLY if readable else os.O_WRONLY) | os.O_BINARY | os.O_NOINHERIT
        return msvcrt.open_osfhandle(handle, flags)
    # Simulator: the handle is an OS pipe descriptor (docs/architecture.md).
    return int(handle)


def _close_function() -> Any:
    """``kernel32!CloseHandle`` of the chosen backend (chosen now if need be), remembered
    with that backend in :data:`_closer`."""
    global _closer, _loader
    from hcs_sandbox.native import api, loader

    _loader = loader
    backend = loader.get_backend()  # before resolving: a stale pairing can only miss later
    func = api.kernel32.CloseHandle
    _closer = (backend, func)
    return func


def close_handle(handle: int | ctypes.c_void_p) -> None:
    """``CloseHandle(handle)``; raises ``OSError`` when it fails.  NULL is ignored.

    ``handle`` may be the ``c_void_p`` that holds the handle (the out parameter a call wrote
    it to, which every clean-up that may close it shares): it is set to NULL right before
    ``CloseHandle`` is called, with nothing in between where CPython runs a signal handler (a
    Python call, the return of a C call, a backward jump).  A Ctrl+C raised anywhere in here
    therefore leaves it either still holding the handle, not closed yet, or NULL, the close
    made: a clean-up that closes what it still holds closes the handle once, never twice."""
    if isinstance(handle, ctypes.c_void_p):
        held: ctypes.c_void_p | None = handle
        value = handle.value or 0
    else:
        held, value = None, handle
    if not value:
        return
    backend, func = _closer
    if backend is None or backend is not _loader._backend:
        func = _close_function()
    if held is not None:
        held.value = None  # and CloseHandle at once: no handler runs in between (see above)
    ok = func(value)
    if not ok:
        if sys.platform == "win32":
            raise ctypes.WinError(ctypes.get_last_error())
        raise OSError(f"CloseHandle({value:#x}) failed")


def close_held(held: ctypes.c_void_p, close: Any) -> Any:
    """``close(handle)`` for the handle ``held`` still holds, which is set to NULL right
    before ``close`` (a native function, resolved by the caller) is called: nothing in
    between is a point where CPython runs a signal handler (a Python call, the return of a C
    call, a backward jump), as in :func:`close_handle`.  Every clean-up that may close the
    handle closes it through the one ``c_void_p``, so a Ctrl+C anywhere leaves it either
    still holding the handle, not closed yet, or NULL, closed: it is closed once, never
    twice.  Returns what ``close`` returned, None (and closes nothing) when ``held`` is
    NULL."""
    value = held.value or 0
    if not value:
        return None
    held.value = None  # and close at once: no handler runs in between (see above)
    return close(value)
