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

__all__ = ["close_handle", "handle_to_fd"]

# hcs_sandbox.native.api, imported on first use (as native.strings does): a global read per
# close instead of a package import statement (``_handle_fromlist``, a Python call) each time.
_api: Any = None


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


def _import_api() -> Any:
    global _api
    from hcs_sandbox.native import api

    _api = api
    return api


def close_handle(handle: int) -> None:
    """``CloseHandle(handle)``; raises ``OSError`` when it fails.  NULL is ignored."""
    if not handle:
        return
    api = _api or _import_api()
    ok = api.kernel32.CloseHandle(handle)
    if not ok:
        if sys.platform == "win32":
            raise ctypes.WinError(ctypes.get_last_error())
        raise OSError(f"CloseHandle({handle:#x}) failed")
