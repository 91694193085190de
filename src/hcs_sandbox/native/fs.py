"""Win32 file-security calls for the state directory (Windows only; ctypes, loaded lazily).

These are plain Win32 APIs (kernel32/advapi32), not HCS: the simulator has nothing to
simulate here, so they are loaded with ``WinDLL`` on first call and are unavailable
elsewhere (:class:`NativeUnavailable`).  Nothing happens at import time.

Prototypes and constants, with their sources (Microsoft Learn, Win32 API reference):

- ``BOOL ConvertStringSecurityDescriptorToSecurityDescriptorW(LPCWSTR StringSecurityDescriptor,
  DWORD StringSDRevision, PSECURITY_DESCRIPTOR *SecurityDescriptor, PULONG SecurityDescriptorSize)``
  -- sddl.h; "Currently this value must be SDDL_REVISION_1"; the returned buffer is freed
  with ``LocalFree``.
- ``BOOL ConvertSecurityDescriptorToStringSecurityDescriptorW(PSECURITY_DESCRIPTOR,
  DWORD RequestedStringSDRevision, SECURITY_INFORMATION, LPWSTR *StringSecurityDescriptor,
  PULONG StringSecurityDescriptorLen)`` -- sddl.h; output freed with ``LocalFree``.
- ``BOOL CreateDirectoryW(LPCWSTR lpPathName, LPSECURITY_ATTRIBUTES lpSecurityAttributes)``
  -- fileapi.h; ``SECURITY_ATTRIBUTES {DWORD nLength; LPVOID lpSecurityDescriptor;
  BOOL bInheritHandle;}`` -- wtypesbase.h / minwinbase.h.
- ``DWORD GetNamedSecurityInfoW(LPCWSTR pObjectName, SE_OBJECT_TYPE ObjectType,
  SECURITY_INFORMATION SecurityInfo, PSID *ppsidOwner, PSID *ppsidGroup, PACL *ppDacl,
  PACL *ppSacl, PSECURITY_DESCRIPTOR *ppSecurityDescriptor)`` -- aclapi.h; returns a Win32
  error code (ERROR_SUCCESS = 0); ``ppSecurityDescriptor`` freed with ``LocalFree``.
- ``DWORD SetNamedSecurityInfoW(LPWSTR pObjectName, SE_OBJECT_TYPE ObjectType,
  SECURITY_INFORMATION SecurityInfo, PSID psidOwner, PSID psidGroup, PACL pDacl, PACL pSacl)``
  -- aclapi.h; inheritable ACEs are propagated to existing children.
- ``BOOL GetSecurityDescriptorDacl(PSECURITY_DESCRIPTOR, LPBOOL lpbDaclPresent, PACL *pDacl,
  LPBOOL lpbDaclDefaulted)`` and ``BOOL GetSecurityDescriptorOwner(PSECURITY_DESCRIPTOR,
  PSID *pOwner, LPBOOL lpbOwnerDefaulted)`` -- securitybaseapi.h.
- ``HLOCAL LocalFree(HLOCAL hMem)`` -- winbase.h.
- ``SDDL_REVISION_1 = 1`` (sddl.h); ``SE_FILE_OBJECT = 1`` (accctrl.h ``SE_OBJECT_TYPE``:
  ``SE_UNKNOWN_OBJECT_TYPE = 0, SE_FILE_OBJECT``); ``OWNER_SECURITY_INFORMATION = 0x1``,
  ``DACL_SECURITY_INFORMATION = 0x4``, ``PROTECTED_DACL_SECURITY_INFORMATION = 0x80000000``
  (winnt.h, "SECURITY_INFORMATION" page); ``ERROR_ALREADY_EXISTS = 183`` (winerror.h).

Errors are raised as ``OSError`` (``ctypes.WinError``) with ``winerror`` set; the sandbox
layer turns them into :class:`hcs_sandbox.errors.StoreError` with a remedy.
"""

from __future__ import annotations

import ctypes
import sys
import threading
from typing import Any

from hcs_sandbox.native.loader import NativeUnavailable

__all__ = [
    "DACL_SECURITY_INFORMATION",
    "ERROR_ALREADY_EXISTS",
    "OWNER_SECURITY_INFORMATION",
    "PROTECTED_DACL_SECURITY_INFORMATION",
    "create_directory_with_sddl",
    "get_file_sddl",
    "set_file_sddl",
]

SDDL_REVISION_1 = 1
SE_FILE_OBJECT = 1
OWNER_SECURITY_INFORMATION = 0x00000001
DACL_SECURITY_INFORMATION = 0x00000004
PROTECTED_DACL_SECURITY_INFORMATION = 0x80000000
ERROR_ALREADY_EXISTS = 183

_lock = threading.Lock()
_funcs: dict[str, Any] = {}


def _require_windows(what: str) -> None:
    if sys.platform != "win32":
        raise NativeUnavailable(f"{what} is a Windows call; this is {sys.platform}")


if sys.platform == "win32":
    from ctypes import wintypes

    class SECURITY_ATTRIBUTES(ctypes.Structure):
        """wtypesbase.h SECURITY_ATTRIBUTES."""

        _fields_ = (
            ("nLength", wintypes.DWORD),
            ("lpSecurityDescriptor", ctypes.c_void_p),
            ("bInheritHandle", wintypes.BOOL),
        )

    def _api() -> dict[str, Any]:
        """Load the prototypes once (first call), with use_last_error for GetLastError."""
        with _lock:
            if _funcs:
                return _funcs
            kernel32 = ctypes.WinDLL("kernel32.dll", use_last_error=True)
            advapi32 = ctypes.WinDLL("advapi32.dll", use_last_error=True)
            pvoid = ctypes.c_void_p
            ppvoid = ctypes.POINTER(ctypes.c_void_p)
            pbool = ctypes.POINTER(wintypes.BOOL)

            f = advapi32.ConvertStringSecurityDescriptorToSecurityDescriptorW
            f.argtypes = (ctypes.c_wchar_p, wintypes.DWORD, ppvoid, ctypes.POINTER(wintypes.ULONG))
            f.restype = wintypes.BOOL
            _funcs["sddl_to_sd"] = f

            f = advapi32.ConvertSecurityDescriptorToStringSecurityDescriptorW
            f.argtypes = (
                pvoid,
                wintypes.DWORD,
                wintypes.DWORD,
                ppvoid,
                ctypes.POINTER(wintypes.ULONG),
            )
            f.restype = wintypes.BOOL
            _funcs["sd_to_sddl"] = f

            f = kernel32.CreateDirectoryW
            f.argtypes = (ctypes.c_wchar_p, ctypes.POINTER(SECURITY_ATTRIBUTES))
            f.restype = wintypes.BOOL
            _funcs["create_directory"] = f

            f = advapi32.GetNamedSecurityInfoW
            f.argtypes = (
                ctypes.c_wchar_p, ctypes.c_int, wintypes.DWORD,
                ppvoid, ppvoid, ppvoid, ppvoid, ppvoid,
            )  # fmt: skip
            f.restype = wintypes.DWORD
            _funcs["get_named"] = f

            f = advapi32.SetNamedSecurityInfoW
            f.argtypes = (
                ctypes.c_wchar_p,
                ctypes.c_int,
                wintypes.DWORD,
                pvoid,
                pvoid,
                pvoid,
                pvoid,
            )
            f.restype = wintypes.DWORD
            _funcs["set_named"] = f

            f = advapi32.GetSecurityDescriptorDacl
            f.argtypes = (pvoid, pbool, ppvoid, pbool)
            f.restype = wintypes.BOOL
            _funcs["sd_dacl"] = f

            f = advapi32.GetSecurityDescriptorOwner
            f.argtypes = (pvoid, ppvoid, pbool)
            f.restype = wintypes.BOOL
            _funcs["sd_owner"] = f

            f = kernel32.LocalFree
            f.argtypes = (pvoid,)
            f.restype = pvoid
            _funcs["local_free"] = f
            return _funcs

    def _last_error(what: str) -> OSError:
        code = ctypes.get_last_error()
        err = ctypes.WinError(code)
        return OSError(err.errno, f"{what}: {err.strerror}", None, code)

    def _sd_from_sddl(sddl: str) -> int:
        api = _api()
        sd = ctypes.c_void_p()
        if not api["sddl_to_sd"](sddl, SDDL_REVISION_1, ctypes.byref(sd), None):
            raise _last_error(f"ConvertStringSecurityDescriptorToSecurityDescriptorW({sddl!r})")
        return int(sd.value or 0)

    def _create_directory_with_sddl(path: str, sddl: str) -> None:
        api = _api()
        sd = _sd_from_sddl(sddl)
        try:
            attrs = SECURITY_ATTRIBUTES(ctypes.sizeof(SECURITY_ATTRIBUTES), sd, False)
            if not api["create_directory"](path, ctypes.byref(attrs)):
                raise _last_error(f"CreateDirectoryW({path!r})")
        finally:
            api["local_free"](sd)

    def _get_file_sddl(path: str) -> str:
        api = _api()
        sd = ctypes.c_void_p()
        info = OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION
        rc = api["get_named"](path, SE_FILE_OBJECT, info, None, None, None, None, ctypes.byref(sd))
        if rc != 0:
            err = ctypes.WinError(rc)
            raise OSError(err.errno, f"GetNamedSecurityInfoW({path!r}): {err.strerror}", None, rc)
        try:
            text = ctypes.c_void_p()
            if not api["sd_to_sddl"](sd, SDDL_REVISION_1, info, ctypes.byref(text), None):
                raise _last_error("ConvertSecurityDescriptorToStringSecurityDescriptorW")
            try:
                return ctypes.wstring_at(text.value or 0)
            finally:
                api["local_free"](text)
        finally:
            api["local_free"](sd)

    def _set_file_sddl(path: str, sddl: str) -> None:
        api = _api()
        sd = _sd_from_sddl(sddl)
        try:
            present = wintypes.BOOL()
            defaulted = wintypes.BOOL()
            dacl = ctypes.c_void_p()
            owner = ctypes.c_void_p()
            if not api["sd_dacl"](
                sd, ctypes.byref(present), ctypes.byref(dacl), ctypes.byref(defaulted)
            ):
                raise _last_error("GetSecurityDescriptorDacl")
            if not api["sd_owner"](sd, ctypes.byref(owner), ctypes.byref(defaulted)):
                raise _last_error("GetSecurityDescriptorOwner")
            info = DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION
            if owner.value:
                info |= OWNER_SECURITY_INFORMATION
            rc = api["set_named"](path, SE_FILE_OBJECT, info, owner, None, dacl, None)
            if rc != 0:
                err = ctypes.WinError(rc)
                raise OSError(
                    err.errno, f"SetNamedSecurityInfoW({path!r}): {err.strerror}", None, rc
                )
        finally:
            api["local_free"](sd)


def create_directory_with_sddl(path: str, sddl: str) -> None:
    """Create one directory whose security descriptor is ``sddl`` (``CreateDirectoryW``).

    Raises ``OSError`` (``winerror`` 183, ERROR_ALREADY_EXISTS, when it exists).
    """
    _require_windows("CreateDirectoryW")
    if sys.platform == "win32":
        _create_directory_with_sddl(path, sddl)


def get_file_sddl(path: str) -> str:
    """The owner and DACL of a file or directory, as an SDDL string (``O:..D:..``)."""
    _require_windows("GetNamedSecurityInfoW")
    if sys.platform == "win32":
        return _get_file_sddl(path)
    raise AssertionError("unreachable")  # pragma: no cover


def set_file_sddl(path: str, sddl: str) -> None:
    """Replace the owner (when ``sddl`` has one) and the DACL of ``path``, DACL protected.

    Uses ``SetNamedSecurityInfoW``, which also re-propagates inheritable ACEs to children
    (their explicit ACEs, such as those ``HcsGrantVmAccess`` adds, are kept).
    """
    _require_windows("SetNamedSecurityInfoW")
    if sys.platform == "win32":
        _set_file_sddl(path, sddl)
