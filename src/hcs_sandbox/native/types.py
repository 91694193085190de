"""ctypes aliases, structures, callback types and constants of the HCS/HCN/virtdisk APIs.

Conventions (docs/architecture.md, "ctypes conventions"):

- ``HRESULT`` is ``c_int32`` (it *is* ``c_long`` on Windows, and keeps 32 bits on LP64
  simulator hosts); never ``ctypes.HRESULT``, which raises before the result document can be
  read.  ``hcs_sandbox.errors.normalize_hresult`` turns the signed value into ``0x8xxxxxxx``.
- Opaque handles (``HCS_SYSTEM``, ``HCS_PROCESS``, ``HCS_OPERATION``, ``HCN_*``, ``HANDLE``)
  are ``c_void_p``; ``PCWSTR`` is ``c_wchar_p``; ``PWSTR*`` out-parameters are
  ``POINTER(c_void_p)`` so the raw pointer survives for freeing (``native/strings.py``).
- Enums are ``c_int32`` (win32metadata declares every one of these enums as ``i32``:
  microsoft/windows-rs ``crates/libs/sys/src/Windows/Win32/System/HostComputeSystem/mod.rs``).

Sources, cited per item below:

- [DOCS] MicrosoftDocs/Virtualization-Documentation ``virtualization/api/hcs/Reference/*.md`` and
  ``virtualization/api/hcn/Reference/*.md``;
- [DEFS] ``ComputeDefs.h`` (Windows SDK; the same text is mirrored by mingw-w64), which defines
  ``HCS_EVENT``, ``HCS_PROCESS_INFORMATION``, ``HCS_CREATE_OPTIONS_1`` and the enums;
- [META] microsoft/windows-rs (generated from microsoft/win32metadata):
  ``Win32/System/HostComputeSystem``, ``Win32/System/HostComputeNetwork``, ``Win32/Storage/Vhd``;
- [WINIO] microsoft/go-winio ``vhd/vhd.go`` (virtdisk structures and flags as hcsshim uses them).

Nothing here loads a DLL or touches the file system: this module only declares types.
"""

from __future__ import annotations

import ctypes
import sys
from ctypes import (
    POINTER,
    Structure,
    Union,
    c_int32,
    c_uint8,
    c_uint16,
    c_uint32,
    c_uint64,
    c_void_p,
    c_wchar_p,
)
from typing import TYPE_CHECKING

from hcs_sandbox.errors import SpecError

if TYPE_CHECKING:
    import uuid  # imported where used: it imports platform (~2.5 ms of every start)
    from ctypes import _CFunctionType

__all__ = [
    "ATTACH_VIRTUAL_DISK_FLAG_NONE",
    "ATTACH_VIRTUAL_DISK_FLAG_NO_DRIVE_LETTER",
    "ATTACH_VIRTUAL_DISK_FLAG_NO_LOCAL_HOST",
    "ATTACH_VIRTUAL_DISK_FLAG_PERMANENT_LIFETIME",
    "ATTACH_VIRTUAL_DISK_FLAG_READ_ONLY",
    "ATTACH_VIRTUAL_DISK_PARAMETERS",
    "ATTACH_VIRTUAL_DISK_VERSION_1",
    "ATTACH_VIRTUAL_DISK_VERSION_2",
    "BOOL",
    "CREATE_VIRTUAL_DISK_FLAG_NONE",
    "CREATE_VIRTUAL_DISK_PARAMETERS",
    "CREATE_VIRTUAL_DISK_VERSION_2",
    "DETACH_VIRTUAL_DISK_FLAG_NONE",
    "DWORD",
    "FUNCTYPE",
    "GENERIC_ALL",
    "GUID",
    "HANDLE",
    "HCN_ENDPOINT",
    "HCN_NETWORK",
    "HCN_NOTIFICATION_CALLBACK",
    "HCS_CREATE_OPTIONS_1",
    "HCS_EVENT",
    "HCS_EVENT_CALLBACK",
    "HCS_INVALID_OPERATION_ID",
    "HCS_OPERATION",
    "HCS_OPERATION_COMPLETION",
    "HCS_PROCESS",
    "HCS_PROCESS_INFORMATION",
    "HCS_SYSTEM",
    "HRESULT",
    "INFINITE",
    "OPEN_VIRTUAL_DISK_FLAG_CACHED_IO",
    "OPEN_VIRTUAL_DISK_FLAG_IGNORE_RELATIVE_PARENT_LOCATOR",
    "OPEN_VIRTUAL_DISK_FLAG_NONE",
    "OPEN_VIRTUAL_DISK_FLAG_NO_PARENTS",
    "OPEN_VIRTUAL_DISK_PARAMETERS",
    "OPEN_VIRTUAL_DISK_VERSION_2",
    "PCWSTR",
    "PWSTR_OUT",
    "UINT64",
    "VIRTUAL_DISK_ACCESS_ALL",
    "VIRTUAL_DISK_ACCESS_NONE",
    "VIRTUAL_STORAGE_TYPE",
    "VIRTUAL_STORAGE_TYPE_DEVICE_UNKNOWN",
    "VIRTUAL_STORAGE_TYPE_DEVICE_VHD",
    "VIRTUAL_STORAGE_TYPE_DEVICE_VHDX",
    "VIRTUAL_STORAGE_TYPE_VENDOR_MICROSOFT",
    "HcnNotification",
    "HcsCreateOptions",
    "HcsEventOptions",
    "HcsEventType",
    "HcsOperationType",
    "guid_pointer",
]

# --------------------------------------------------------------------------------------
# Calling convention.  WINAPI/CALLBACK is stdcall, which on x64 is the one Microsoft x64
# convention; ctypes spells it WINFUNCTYPE on Windows and CFUNCTYPE elsewhere (the simulator
# is a CFUNCTYPE thunk).  [DEFS] "typedef void (CALLBACK *HCS_EVENT_CALLBACK)(...)".
# --------------------------------------------------------------------------------------

if sys.platform == "win32":
    FUNCTYPE = ctypes.WINFUNCTYPE
else:
    FUNCTYPE = ctypes.CFUNCTYPE

# --------------------------------------------------------------------------------------
# Scalar aliases (docs/architecture.md conventions table; [META] for each C type).
# --------------------------------------------------------------------------------------

HRESULT = c_int32  # winerror.h: typedef LONG HRESULT; LONG is 32-bit on Windows
DWORD = c_uint32  # minwindef.h: unsigned long (32-bit on Windows)
UINT64 = c_uint64
BOOL = c_int32  # minwindef.h: typedef int BOOL
HANDLE = c_void_p
HCS_SYSTEM = c_void_p  # [DEFS] DECLARE_HANDLE(HCS_SYSTEM)
HCS_PROCESS = c_void_p  # [DEFS] DECLARE_HANDLE(HCS_PROCESS)
HCS_OPERATION = c_void_p  # [DEFS] DECLARE_HANDLE(HCS_OPERATION)
HCN_NETWORK = c_void_p  # [DOCS] api/hcn/Reference/HCN_NETWORK.md: typedef void* HCN_NETWORK
HCN_ENDPOINT = c_void_p  # [DOCS] api/hcn/Reference/HCN_ENDPOINT.md: typedef void* HCN_ENDPOINT
PCWSTR = c_wchar_p
PWSTR_OUT = POINTER(c_void_p)  # PWSTR* out-parameter, read+freed by native.strings

# --------------------------------------------------------------------------------------
# Constants
# --------------------------------------------------------------------------------------

INFINITE = 0xFFFFFFFF  # winbase.h INFINITE; [DOCS] HcsWaitForOperationResult.md timeoutMs
GENERIC_ALL = 0x10000000  # winnt.h GENERIC_ALL; hcsshim passes it to HcsOpenComputeSystem
# [DEFS] "#define HCS_INVALID_OPERATION_ID (UINT64)(-1)"; [DOCS] HcsGetOperationId.md names it
# without a value.
HCS_INVALID_OPERATION_ID = 0xFFFFFFFFFFFFFFFF


class HcsOperationType:
    """``HCS_OPERATION_TYPE`` ([DOCS] HCS_OPERATION_TYPE.md; [DEFS] adds Crash=15 and
    LiveMigration=19).  Returned by ``HcsGetOperationType`` as a signed int32."""

    NONE = -1
    ENUMERATE = 0
    CREATE = 1
    START = 2
    SHUTDOWN = 3
    PAUSE = 4
    RESUME = 5
    SAVE = 6
    TERMINATE = 7
    MODIFY = 8
    GET_PROPERTIES = 9
    CREATE_PROCESS = 10
    SIGNAL_PROCESS = 11
    GET_PROCESS_INFO = 12
    GET_PROCESS_PROPERTIES = 13
    MODIFY_PROCESS = 14
    CRASH = 15
    LIVE_MIGRATION = 19


class HcsEventType:
    """``HCS_EVENT_TYPE`` ([DOCS] HCS_EVENT_TYPE.md; [DEFS] for the group values).

    Values are given unsigned; :class:`HCS_EVENT` declares ``Type`` as ``c_uint32`` so that
    ``event.Type == HcsEventType.GROUP_VM_LIFECYCLE`` compares as written.
    """

    INVALID = 0x00000000
    SYSTEM_EXITED = 0x00000001
    SYSTEM_CRASH_INITIATED = 0x00000002
    SYSTEM_CRASH_REPORT = 0x00000003
    SYSTEM_RDP_ENHANCED_MODE_STATE_CHANGED = 0x00000004
    SYSTEM_SILO_JOB_CREATED = 0x00000005
    SYSTEM_GUEST_CONNECTION_CLOSED = 0x00000006
    PROCESS_EXITED = 0x00010000
    OPERATION_CALLBACK = 0x01000000
    SERVICE_DISCONNECT = 0x02000000
    GROUP_VM_LIFECYCLE = 0x80000002
    GROUP_LIVE_MIGRATION = 0x80000003
    GROUP_OPERATION_INFO = 0xC0000001


class HcsEventOptions:
    """``HCS_EVENT_OPTIONS`` flags ([DOCS] HCS_EVENT_OPTIONS.md; [DEFS] for 2 and 4)."""

    NONE = 0x00000000
    ENABLE_OPERATION_CALLBACKS = 0x00000001
    ENABLE_VM_LIFECYCLE = 0x00000002
    ENABLE_LIVE_MIGRATION_EVENTS = 0x00000004


class HcsCreateOptions:
    """``HCS_CREATE_OPTIONS`` ([DOCS] HCS_CREATE_OPTIONS.md)."""

    VERSION_1 = 0x00010000  # HcsCreateOptions_1


class HcnNotification:
    """``HCN_NOTIFICATIONS`` ([DOCS] api/hcn/Reference/HCN_NOTIFICATIONS.md; [META])."""

    INVALID = 0x00000000
    NETWORK_PRE_CREATE = 0x00000001
    NETWORK_CREATE = 0x00000002
    NETWORK_PRE_DELETE = 0x00000003
    NETWORK_DELETE = 0x00000004
    NAMESPACE_CREATE = 0x00000005
    NAMESPACE_DELETE = 0x00000006
    GUEST_NETWORK_SERVICE_CREATE = 0x00000007
    GUEST_NETWORK_SERVICE_DELETE = 0x00000008
    NETWORK_ENDPOINT_ATTACHED = 0x00000009
    NETWORK_ENDPOINT_DETACHED = 0x00000010
    SERVICE_DISCONNECT = 0x01000000


# --------------------------------------------------------------------------------------
# GUID (guiddef.h: DWORD Data1; WORD Data2; WORD Data3; BYTE Data4[8]; size 16, align 4)
# --------------------------------------------------------------------------------------


class GUID(Structure):
    """A Windows ``GUID``.  Build one with :meth:`from_string` / :meth:`from_uuid`."""

    _fields_ = (
        ("Data1", c_uint32),
        ("Data2", c_uint16),
        ("Data3", c_uint16),
        ("Data4", c_uint8 * 8),
    )

    @classmethod
    def from_uuid(cls, value: uuid.UUID) -> GUID:
        """The GUID with the same value as ``value`` (RFC 4122 field order)."""
        guid = cls()
        guid.Data1 = value.time_low
        guid.Data2 = value.time_mid
        guid.Data3 = value.time_hi_version
        for index, byte in enumerate(value.bytes[8:]):
            guid.Data4[index] = byte
        return guid

    @classmethod
    def from_string(cls, text: str) -> GUID:
        """Parse ``"EC984AEC-A0F9-47E9-901F-71415A66345B"`` (braces and case optional).

        Raises :class:`hcs_sandbox.errors.SpecError` (a ``ValueError``) on anything else.
        """
        stripped = text.strip() if isinstance(text, str) else text
        if (
            not isinstance(stripped, str)
            or len(stripped.strip("{}")) != 36
            or stripped.count("-") != 4
        ):
            raise SpecError(
                f"invalid GUID {text!r}: expected 8-4-4-4-12 hexadecimal digits",
                value=text,
                allowed="a GUID such as 'EC984AEC-A0F9-47E9-901F-71415A66345B'",
            )
        if stripped.startswith("{") != stripped.endswith("}"):
            raise SpecError(
                f"invalid GUID {text!r}: unbalanced braces",
                value=text,
                allowed="a GUID such as 'EC984AEC-A0F9-47E9-901F-71415A66345B'",
            )
        import uuid

        try:
            value = uuid.UUID(stripped.strip("{}"))
        except ValueError as exc:
            raise SpecError(
                f"invalid GUID {text!r}: {exc}",
                value=text,
                allowed="a GUID such as 'EC984AEC-A0F9-47E9-901F-71415A66345B'",
            ) from exc
        return cls.from_uuid(value)

    def to_uuid(self) -> uuid.UUID:
        """This GUID as a :class:`uuid.UUID`."""
        import uuid

        return uuid.UUID(
            fields=(
                self.Data1,
                self.Data2,
                self.Data3,
                self.Data4[0],
                self.Data4[1],
                int.from_bytes(bytes(self.Data4[2:8]), "big"),
            )
        )

    def to_string(self, *, upper: bool = False) -> str:
        """``"ec984aec-a0f9-47e9-901f-71415a66345b"`` (no braces; ``upper`` for upper case)."""
        text = str(self.to_uuid())
        return text.upper() if upper else text

    def __str__(self) -> str:
        return self.to_string()

    def __repr__(self) -> str:
        return f"GUID('{self.to_string()}')"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, GUID):
            return bytes(self) == bytes(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(bytes(self))


def guid_pointer(value: GUID | None) -> ctypes._Pointer[GUID] | None:
    """A ``REFGUID`` argument: a pointer to ``value``, or NULL for None."""
    return None if value is None else ctypes.pointer(value)


# --------------------------------------------------------------------------------------
# computecore structures ([DEFS]; [DOCS] HCS_EVENT.md, HCS_PROCESS_INFORMATION.md)
# --------------------------------------------------------------------------------------


class HCS_EVENT(Structure):
    """``HCS_EVENT { HCS_EVENT_TYPE Type; PCWSTR EventData; HCS_OPERATION Operation; }``.

    x64: offsets 0/8/16, size 24.  ``EventData`` is read as a raw pointer so the callback can
    copy it (with ``ctypes.wstring_at``) before returning: its lifetime ends with the callback.
    """

    _fields_ = (
        ("Type", c_uint32),  # HCS_EVENT_TYPE (int32 enum; unsigned here, see HcsEventType)
        ("EventData", c_void_p),  # PCWSTR, owned by HCS
        ("Operation", c_void_p),  # HCS_OPERATION, valid for HcsEventOperationCallback
    )


class HCS_PROCESS_INFORMATION(Structure):
    """``{ DWORD ProcessId; DWORD Reserved; HANDLE StdInput, StdOutput, StdError; }``.

    x64 size 32.  The std handles are owned by the caller ([DOCS] HcsCreateProcess.md).
    """

    _fields_ = (
        ("ProcessId", c_uint32),
        ("Reserved", c_uint32),
        ("StdInput", c_void_p),
        ("StdOutput", c_void_p),
        ("StdError", c_void_p),
    )


# Callback types.  [DEFS]/[DOCS] HCS_OPERATION_COMPLETION.md, HCS_EVENT_CALLBACK.md,
# api/hcn/Reference/HCN_NOTIFICATION_CALLBACK.md.  Keep every instance alive for as long as
# HCS may call it (the hcs layer owns that).
HCS_OPERATION_COMPLETION: type[_CFunctionType] = FUNCTYPE(None, c_void_p, c_void_p)
HCS_EVENT_CALLBACK: type[_CFunctionType] = FUNCTYPE(None, POINTER(HCS_EVENT), c_void_p)
HCN_NOTIFICATION_CALLBACK: type[_CFunctionType] = FUNCTYPE(
    None, c_uint32, c_void_p, c_int32, c_void_p
)


class HCS_CREATE_OPTIONS_1(Structure):
    """``HCS_CREATE_OPTIONS_1`` ([DEFS]), for ``HcsCreateComputeSystemInNamespace``.

    Declared for completeness; the project does not call the namespace APIs yet.
    """

    _fields_ = (
        ("Version", c_int32),  # HcsCreateOptions.VERSION_1
        ("UserToken", c_void_p),
        ("SecurityDescriptor", c_void_p),
        ("CallbackOptions", c_int32),  # HCS_EVENT_OPTIONS
        ("CallbackContext", c_void_p),
        ("Callback", HCS_EVENT_CALLBACK),
    )


# --------------------------------------------------------------------------------------
# virtdisk ([META] Win32/Storage/Vhd; [WINIO] vhd/vhd.go; learn.microsoft.com virtdisk.h)
# --------------------------------------------------------------------------------------

VIRTUAL_STORAGE_TYPE_DEVICE_UNKNOWN = 0  # virtdisk.h; all-zero type = infer from extension
VIRTUAL_STORAGE_TYPE_DEVICE_VHD = 2  # virtdisk.h
VIRTUAL_STORAGE_TYPE_DEVICE_VHDX = 3  # virtdisk.h; [WINIO] VIRTUAL_STORAGE_TYPE_DEVICE_VHDX
# virtdisk.h VIRTUAL_STORAGE_TYPE_VENDOR_MICROSOFT
VIRTUAL_STORAGE_TYPE_VENDOR_MICROSOFT = "EC984AEC-A0F9-47E9-901F-71415A66345B"

# VIRTUAL_DISK_ACCESS_MASK ([WINIO] VirtualDiskAccess*; [META])
VIRTUAL_DISK_ACCESS_NONE = 0x00000000
VIRTUAL_DISK_ACCESS_ATTACH_RO = 0x00010000
VIRTUAL_DISK_ACCESS_ATTACH_RW = 0x00020000
VIRTUAL_DISK_ACCESS_DETACH = 0x00040000
VIRTUAL_DISK_ACCESS_GET_INFO = 0x00080000
VIRTUAL_DISK_ACCESS_CREATE = 0x00100000
VIRTUAL_DISK_ACCESS_METAOPS = 0x00200000
VIRTUAL_DISK_ACCESS_READ = 0x000D0000
VIRTUAL_DISK_ACCESS_ALL = 0x003F0000
VIRTUAL_DISK_ACCESS_WRITABLE = 0x00320000

# CREATE_VIRTUAL_DISK_FLAG ([WINIO]; [META])
CREATE_VIRTUAL_DISK_FLAG_NONE = 0x0
CREATE_VIRTUAL_DISK_FLAG_FULL_PHYSICAL_ALLOCATION = 0x1
CREATE_VIRTUAL_DISK_FLAG_SPARSE_FILE = 0x80

# OPEN_VIRTUAL_DISK_FLAG ([WINIO]; [META])
OPEN_VIRTUAL_DISK_FLAG_NONE = 0x00000000
OPEN_VIRTUAL_DISK_FLAG_NO_PARENTS = 0x00000001
OPEN_VIRTUAL_DISK_FLAG_BLANK_FILE = 0x00000002
OPEN_VIRTUAL_DISK_FLAG_BOOT_DRIVE = 0x00000004
OPEN_VIRTUAL_DISK_FLAG_CACHED_IO = 0x00000008
OPEN_VIRTUAL_DISK_FLAG_IGNORE_RELATIVE_PARENT_LOCATOR = 0x00000080

# ATTACH_VIRTUAL_DISK_FLAG ([WINIO]; [META])
ATTACH_VIRTUAL_DISK_FLAG_NONE = 0x00000000
ATTACH_VIRTUAL_DISK_FLAG_READ_ONLY = 0x00000001
ATTACH_VIRTUAL_DISK_FLAG_NO_DRIVE_LETTER = 0x00000002
ATTACH_VIRTUAL_DISK_FLAG_PERMANENT_LIFETIME = 0x00000004
ATTACH_VIRTUAL_DISK_FLAG_NO_LOCAL_HOST = 0x00000008

DETACH_VIRTUAL_DISK_FLAG_NONE = 0x0  # [WINIO]

# Parameter versions ([META] *_VERSION enums)
CREATE_VIRTUAL_DISK_VERSION_2 = 2
OPEN_VIRTUAL_DISK_VERSION_2 = 2
ATTACH_VIRTUAL_DISK_VERSION_1 = 1
ATTACH_VIRTUAL_DISK_VERSION_2 = 2


class VIRTUAL_STORAGE_TYPE(Structure):
    """``{ ULONG DeviceId; GUID VendorId; }`` (size 20).  All zero = infer from the file."""

    _fields_ = (("DeviceId", c_uint32), ("VendorId", GUID))

    @classmethod
    def vhdx(cls) -> VIRTUAL_STORAGE_TYPE:
        """``{VIRTUAL_STORAGE_TYPE_DEVICE_VHDX, VIRTUAL_STORAGE_TYPE_VENDOR_MICROSOFT}``.

        A new structure each time; the vendor GUID is parsed once (a constant) and copied
        into it (ctypes copies a structure assigned to a field), never shared.
        """
        return cls(VIRTUAL_STORAGE_TYPE_DEVICE_VHDX, _microsoft_vendor())


_MICROSOFT_VENDOR: GUID | None = None


def _microsoft_vendor() -> GUID:
    """``VIRTUAL_STORAGE_TYPE_VENDOR_MICROSOFT`` as a GUID, parsed on first use (parsing
    imports ``uuid``); read-only afterwards, so threads may share it."""
    global _MICROSOFT_VENDOR
    guid = _MICROSOFT_VENDOR
    if guid is None:
        guid = _MICROSOFT_VENDOR = GUID.from_string(VIRTUAL_STORAGE_TYPE_VENDOR_MICROSOFT)
    return guid


class _CreateVersion1(Structure):
    _fields_ = (
        ("UniqueId", GUID),
        ("MaximumSize", c_uint64),
        ("BlockSizeInBytes", c_uint32),
        ("SectorSizeInBytes", c_uint32),
        ("ParentPath", c_wchar_p),
        ("SourcePath", c_wchar_p),
    )


class _CreateVersion2(Structure):
    _fields_ = (
        ("UniqueId", GUID),
        ("MaximumSize", c_uint64),
        ("BlockSizeInBytes", c_uint32),
        ("SectorSizeInBytes", c_uint32),
        ("PhysicalSectorSizeInBytes", c_uint32),
        ("ParentPath", c_wchar_p),
        ("SourcePath", c_wchar_p),
        ("OpenFlags", c_uint32),  # OPEN_VIRTUAL_DISK_FLAG
        ("ParentVirtualStorageType", VIRTUAL_STORAGE_TYPE),
        ("SourceVirtualStorageType", VIRTUAL_STORAGE_TYPE),
        ("ResiliencyGuid", GUID),
    )


class _CreateVersion3(Structure):
    _fields_ = (
        *_CreateVersion2._fields_,
        ("SourceLimitPath", c_wchar_p),
        ("BackingStorageType", VIRTUAL_STORAGE_TYPE),
    )


class _CreateVersion4(Structure):
    _fields_ = (
        *_CreateVersion3._fields_,
        ("PmemAddressAbstractionType", GUID),
        ("DataAlignment", c_uint64),
    )


class _CreateVersions(Union):
    _fields_ = (
        ("Version1", _CreateVersion1),
        ("Version2", _CreateVersion2),
        ("Version3", _CreateVersion3),
        ("Version4", _CreateVersion4),
    )


class CREATE_VIRTUAL_DISK_PARAMETERS(Structure):
    """``CREATE_VIRTUAL_DISK_PARAMETERS`` ([META]); the project fills ``Version2`` only.

    The union carries all four versions so the structure has the header's size; virtdisk
    reads only the member that ``Version`` names.
    """

    _anonymous_ = ("u",)
    _fields_ = (("Version", c_int32), ("u", _CreateVersions))


class _OpenVersion1(Structure):
    _fields_ = (("RWDepth", c_uint32),)


class _OpenVersion2(Structure):
    # BOOL is a 32-bit int in virtdisk.h ([META]); go-winio declares Go bools here, which
    # only works because both are zero in its calls.
    _fields_ = (("GetInfoOnly", BOOL), ("ReadOnly", BOOL), ("ResiliencyGuid", GUID))


class _OpenVersion3(Structure):
    _fields_ = (*_OpenVersion2._fields_, ("SnapshotId", GUID))


class _OpenVersions(Union):
    _fields_ = (
        ("Version1", _OpenVersion1),
        ("Version2", _OpenVersion2),
        ("Version3", _OpenVersion3),
    )


class OPEN_VIRTUAL_DISK_PARAMETERS(Structure):
    """``OPEN_VIRTUAL_DISK_PARAMETERS`` ([META]); hcsshim always uses ``Version = 2``."""

    _anonymous_ = ("u",)
    _fields_ = (("Version", c_int32), ("u", _OpenVersions))


class _AttachVersion1(Structure):
    _fields_ = (("Reserved", c_uint32),)


class _AttachVersion2(Structure):
    _fields_ = (("RestrictedOffset", c_uint64), ("RestrictedLength", c_uint64))


class _AttachVersions(Union):
    _fields_ = (("Version1", _AttachVersion1), ("Version2", _AttachVersion2))


class ATTACH_VIRTUAL_DISK_PARAMETERS(Structure):
    """``ATTACH_VIRTUAL_DISK_PARAMETERS`` ([META]).  Version 2 is absent on RS5 ([WINIO])."""

    _anonymous_ = ("u",)
    _fields_ = (("Version", c_int32), ("u", _AttachVersions))
