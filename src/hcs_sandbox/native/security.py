"""The current user's SID as a string (Windows only; ctypes, loaded lazily).

Plain Win32 calls (kernel32/advapi32), not HCS: the simulator has nothing to simulate
here, so, like :mod:`hcs_sandbox.native.fs`, they are loaded with ``WinDLL`` on first call
and are unavailable elsewhere (:class:`NativeUnavailable`).  They are not in the prototype
table (``native/prototypes.py``): that table is resolved through the backend, which on a
simulator host has no advapi32.  Nothing happens at import time.

Prototypes and constants, with their sources (Microsoft Learn, Win32 API reference):

- ``HANDLE GetCurrentProcess(void)`` -- processthreadsapi.h (kernel32); a pseudo handle
  that need not be closed.
- ``BOOL OpenProcessToken(HANDLE ProcessHandle, DWORD DesiredAccess, PHANDLE TokenHandle)``
  -- processthreadsapi.h (advapi32); ``TOKEN_QUERY = 0x0008`` (winnt.h, "Access Rights for
  Access-Token Objects"); the token handle is closed with ``CloseHandle``.
- ``BOOL GetTokenInformation(HANDLE TokenHandle, TOKEN_INFORMATION_CLASS
  TokenInformationClass, LPVOID TokenInformation, DWORD TokenInformationLength, PDWORD
  ReturnLength)`` -- securitybaseapi.h (advapi32); ``TokenUser = 1`` (winnt.h
  ``TOKEN_INFORMATION_CLASS``, first member ``TokenUser = 1``); the buffer holds a
  ``TOKEN_USER { SID_AND_ATTRIBUTES User; }`` with ``SID_AND_ATTRIBUTES { PSID Sid; DWORD
  Attributes; }`` (winnt.h).  Called first with a zero length, it fails with
  ``ERROR_INSUFFICIENT_BUFFER = 122`` (winerror.h) and sets ``ReturnLength``.
- ``BOOL ConvertSidToStringSidW(PSID Sid, LPWSTR *StringSid)`` -- sddl.h (advapi32); the
  string is freed with ``LocalFree`` (``HLOCAL LocalFree(HLOCAL hMem)``, winbase.h).
- ``BOOL CloseHandle(HANDLE hObject)`` -- handleapi.h (kernel32).

Errors are raised as ``OSError`` (``ctypes.WinError``) with ``winerror`` set; the sandbox
layer (``sandbox/hostfacts.py``) turns them into :class:`hcs_sandbox.errors.HcsSandboxError`
with a remedy.
"""

from __future__ import annotations

import ctypes
import sys
import threading
from typing import Any

from hcs_sandbox.native.loader import NativeUnavailable

__all__ = [
    "ERROR_INSUFFICIENT_BUFFER",
    "TOKEN_QUERY",
    "TOKEN_USER_CLASS",
    "current_user_sid",
]

TOKEN_QUERY = 0x0008
TOKEN_USER_CLASS = 1  # TOKEN_INFORMATION_CLASS.TokenUser
ERROR_INSUFFICIENT_BUFFER = 122

_lock = threading.Lock()
_funcs: dict[str, Any] = {}


if sys.platform == "win32":
    from ctypes import wintypes

    class SID_AND_ATTRIBUTES(ctypes.Structure):
        """winnt.h SID_AND_ATTRIBUTES."""

        _fields_ = (("Sid", ctypes.c_void_p), ("Attributes", wintypes.DWORD))

    class TOKEN_USER(ctypes.Structure):
        """winnt.h TOKEN_USER."""

        _fields_ = (("User", SID_AND_ATTRIBUTES),)

    def _api() -> dict[str, Any]:
        """Load the prototypes once (first call), with use_last_error for GetLastError."""
        with _lock:
            if _funcs:
                return _funcs
            kernel32 = ctypes.WinDLL("kernel32.dll", use_last_error=True)
            advapi32 = ctypes.WinDLL("advapi32.dll", use_last_error=True)
            pvoid = ctypes.c_void_p

            f = kernel32.GetCurrentProcess
            f.argtypes = ()
            f.restype = wintypes.HANDLE
            _funcs["current_process"] = f

            f = advapi32.OpenProcessToken
            f.argtypes = (wintypes.HANDLE, wintypes.DWORD, ctypes.POINTER(wintypes.HANDLE))
            f.restype = wintypes.BOOL
            _funcs["open_token"] = f

            f = advapi32.GetTokenInformation
            f.argtypes = (
                wintypes.HANDLE,
                ctypes.c_int,  # TOKEN_INFORMATION_CLASS (a C enum)
                pvoid,
                wintypes.DWORD,
                ctypes.POINTER(wintypes.DWORD),
            )
            f.restype = wintypes.BOOL
            _funcs["token_info"] = f

            f = advapi32.ConvertSidToStringSidW
            f.argtypes = (pvoid, ctypes.POINTER(ctypes.c_void_p))
            f.restype = wintypes.BOOL
            _funcs["sid_to_string"] = f

            f = kernel32.LocalFree
            f.argtypes = (pvoid,)
            f.restype = pvoid
            _funcs["local_free"] = f

            f = kernel32.CloseHandle
            f.argtypes = (wintypes.HANDLE,)
            f.restype = wintypes.BOOL
            _funcs["close_handle"] = f
            return _funcs

    def _last_error(what: str) -> OSError:
        code = ctypes.get_last_error()
        err = ctypes.WinError(code)
        return OSError(err.errno, f"{what}: {err.strerror}", None, code)

    def _current_user_sid() -> str:
        api = _api()
        token = wintypes.HANDLE()
        if not api["open_token"](api["current_process"](), TOKEN_QUERY, ctypes.byref(token)):
            raise _last_error("OpenProcessToken(TOKEN_QUERY)")
        try:
            needed = wintypes.DWORD(0)
            if not api["token_info"](token, TOKEN_USER_CLASS, None, 0, ctypes.byref(needed)):
                code = ctypes.get_last_error()
                if code != ERROR_INSUFFICIENT_BUFFER:
                    raise _last_error("GetTokenInformation(TokenUser) size query")
            size = max(int(needed.value), ctypes.sizeof(TOKEN_USER))
            buffer = ctypes.create_string_buffer(size)
            if not api["token_info"](token, TOKEN_USER_CLASS, buffer, size, ctypes.byref(needed)):
                raise _last_error("GetTokenInformation(TokenUser)")
            user = TOKEN_USER.from_buffer(buffer)
            text = ctypes.c_void_p()
            if not api["sid_to_string"](user.User.Sid, ctypes.byref(text)):
                raise _last_error("ConvertSidToStringSidW")
            try:
                return ctypes.wstring_at(text.value or 0)
            finally:
                api["local_free"](text)
        finally:
            api["close_handle"](token)


def current_user_sid() -> str:
    """The SID of the user this process runs as (its primary token's ``TokenUser``), as a
    string such as ``S-1-5-21-...-1001``.

    Raises :class:`NativeUnavailable` off Windows and ``OSError`` when a call fails.
    """
    if sys.platform == "win32":
        return _current_user_sid()
    raise NativeUnavailable(
        f"OpenProcessToken/GetTokenInformation are Windows calls; this is {sys.platform}"
    )
