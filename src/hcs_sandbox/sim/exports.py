"""The simulator's own declaration of every export it provides: ``(dll, name) -> prototype``.

Written independently of ``hcs_sandbox.native`` from Microsoft's documented C signatures so a
test can cross-check the binding's prototypes against this table (a wrong prototype in either
shows up as a mismatch).  Sources:

- computecore.dll: MicrosoftDocs/Virtualization-Documentation ``virtualization/api/hcs/Reference/
  Hcs*.md`` (one file per function), ``HCS_EVENT.md``, ``HCS_PROCESS_INFORMATION.md``,
  ``HCS_OPERATION_COMPLETION.md``, ``HCS_EVENT_CALLBACK.md``;
- computestorage.dll: the same folder (HcsSetupBaseOSLayer.md, HcsFormatWritableLayerVhd.md, ...);
- computenetwork.dll: ``virtualization/api/hcn/Reference/Hcn*.md``;
- virtdisk.dll: Win32 ``virtdisk.h`` as vendored by go-winio ``vhd/zvhd_windows.go`` (hcsshim);
- kernel32 ``LocalFree`` / ``CloseHandle``, ole32 ``CoTaskMemFree``: Win32 API docs.

Conventions (docs/architecture.md): HRESULT = c_int32, DWORD/ULONG = c_uint32, UINT64 = c_uint64,
PCWSTR = c_wchar_p, every handle and ``void*`` = c_void_p,
``PWSTR*``/``HANDLE*`` out = POINTER(c_void_p),
REFGUID = POINTER(GUID).  virtdisk's parameter structs are passed as ``c_void_p`` (any pointer, e.g.
``byref(struct)``); :func:`abi_kind` reduces a ctypes type to its ABI class so a cross-check can
treat ``POINTER(X)`` and ``c_void_p`` as the same register-sized pointer.
"""

from __future__ import annotations

import ctypes
from ctypes import POINTER, Structure, c_int32, c_uint16, c_uint32, c_uint64, c_void_p, c_wchar_p
from typing import Any

__all__ = [
    "CREATE_VIRTUAL_DISK_PARAMETERS_V1",
    "CREATE_VIRTUAL_DISK_PARAMETERS_V2",
    "EXPORTS",
    "GUID",
    "HCN_NOTIFICATION_CALLBACK",
    "HCS_EVENT",
    "HCS_EVENT_CALLBACK",
    "HCS_OPERATION_COMPLETION",
    "HCS_PROCESS_INFORMATION",
    "VIRTUAL_STORAGE_TYPE",
    "abi_kind",
]

HRESULT = c_int32
DWORD = c_uint32
HANDLE = c_void_p
PWSTR_OUT = POINTER(c_void_p)
HANDLE_OUT = POINTER(c_void_p)


class GUID(Structure):
    """``GUID`` (guiddef.h): Data1 u32, Data2 u16, Data3 u16, Data4 u8[8]; 16 bytes."""

    _fields_ = [
        ("Data1", c_uint32),
        ("Data2", c_uint16),
        ("Data3", c_uint16),
        ("Data4", ctypes.c_uint8 * 8),
    ]


class HCS_EVENT(Structure):
    """``HCS_EVENT`` (HCS_EVENT.md): Type (HCS_EVENT_TYPE, int32), EventData (PCWSTR), Operation."""

    _fields_ = [("Type", c_int32), ("EventData", c_wchar_p), ("Operation", c_void_p)]


class HCS_PROCESS_INFORMATION(Structure):
    """``HCS_PROCESS_INFORMATION`` (HCS_PROCESS_INFORMATION.md): ProcessId, Reserved, 3 HANDLEs."""

    _fields_ = [
        ("ProcessId", DWORD),
        ("Reserved", DWORD),
        ("StdInput", HANDLE),
        ("StdOutput", HANDLE),
        ("StdError", HANDLE),
    ]


class VIRTUAL_STORAGE_TYPE(Structure):
    """virtdisk.h ``VIRTUAL_STORAGE_TYPE {DWORD DeviceId; GUID VendorId}``."""

    _fields_ = [("DeviceId", DWORD), ("VendorId", GUID)]


class CREATE_VIRTUAL_DISK_PARAMETERS_V1(Structure):
    """virtdisk.h ``CREATE_VIRTUAL_DISK_PARAMETERS`` with ``Version = 1``
    (ns-virtdisk-create_virtual_disk_parameters.md ``Version1``); same alignment as V2."""

    _fields_ = [
        ("Version", DWORD),
        ("_pad", DWORD),
        ("UniqueId", GUID),
        ("MaximumSize", c_uint64),
        ("BlockSizeInBytes", c_uint32),
        ("SectorSizeInBytes", c_uint32),
        ("ParentPath", c_wchar_p),
        ("SourcePath", c_wchar_p),
    ]


class CREATE_VIRTUAL_DISK_PARAMETERS_V2(Structure):
    """virtdisk.h ``CREATE_VIRTUAL_DISK_PARAMETERS`` with ``Version = 2`` (go-winio vhd.go).

    The union after ``Version`` is 8-byte aligned on x64, hence ``_pad``.
    """

    _fields_ = [
        ("Version", DWORD),
        ("_pad", DWORD),
        ("UniqueId", GUID),
        ("MaximumSize", c_uint64),
        ("BlockSizeInBytes", c_uint32),
        ("SectorSizeInBytes", c_uint32),
        ("PhysicalSectorSizeInBytes", c_uint32),
        ("ParentPath", c_wchar_p),
        ("SourcePath", c_wchar_p),
        ("OpenFlags", c_uint32),
        ("ParentVirtualStorageType", VIRTUAL_STORAGE_TYPE),
        ("SourceVirtualStorageType", VIRTUAL_STORAGE_TYPE),
        ("ResiliencyGuid", GUID),
    ]


# HCS_OPERATION_COMPLETION.md: void CALLBACK (HCS_OPERATION operation, void* context)
HCS_OPERATION_COMPLETION = ctypes.CFUNCTYPE(None, c_void_p, c_void_p)
# HCS_EVENT_CALLBACK.md: void CALLBACK (HCS_EVENT* event, void* context)
HCS_EVENT_CALLBACK = ctypes.CFUNCTYPE(None, POINTER(HCS_EVENT), c_void_p)
# HCN_NOTIFICATION_CALLBACK.md: void CALLBACK (DWORD NotificationType, void* Context,
# HRESULT NotificationStatus, PCWSTR NotificationData)
HCN_NOTIFICATION_CALLBACK = ctypes.CFUNCTYPE(None, DWORD, c_void_p, HRESULT, c_wchar_p)

Prototype = tuple[Any, tuple[Any, ...]]

_CC = "computecore.dll"
_CS = "computestorage.dll"
_VD = "virtdisk.dll"
_CN = "computenetwork.dll"

EXPORTS: dict[tuple[str, str], Prototype] = {
    # ---- computecore.dll: operations (HcsCreateOperation.md ... HcsCancelOperation.md)
    (_CC, "HcsCreateOperation"): (c_void_p, (c_void_p, c_void_p)),
    (_CC, "HcsCloseOperation"): (None, (c_void_p,)),
    (_CC, "HcsWaitForOperationResult"): (HRESULT, (c_void_p, DWORD, PWSTR_OUT)),
    (_CC, "HcsGetOperationResult"): (HRESULT, (c_void_p, PWSTR_OUT)),
    (_CC, "HcsWaitForOperationResultAndProcessInfo"): (
        HRESULT,
        (c_void_p, DWORD, POINTER(HCS_PROCESS_INFORMATION), PWSTR_OUT),
    ),
    (_CC, "HcsGetOperationResultAndProcessInfo"): (
        HRESULT,
        (c_void_p, POINTER(HCS_PROCESS_INFORMATION), PWSTR_OUT),
    ),
    (_CC, "HcsSetOperationCallback"): (HRESULT, (c_void_p, c_void_p, c_void_p)),
    (_CC, "HcsCancelOperation"): (HRESULT, (c_void_p,)),
    (_CC, "HcsGetOperationType"): (c_int32, (c_void_p,)),  # HCS_OPERATION_TYPE (enum)
    (_CC, "HcsGetOperationId"): (c_uint64, (c_void_p,)),
    # ---- computecore.dll: compute systems
    (_CC, "HcsCreateComputeSystem"): (
        HRESULT,
        (c_wchar_p, c_wchar_p, c_void_p, c_void_p, HANDLE_OUT),
    ),
    (_CC, "HcsOpenComputeSystem"): (HRESULT, (c_wchar_p, DWORD, HANDLE_OUT)),
    (_CC, "HcsCloseComputeSystem"): (None, (c_void_p,)),
    (_CC, "HcsStartComputeSystem"): (HRESULT, (c_void_p, c_void_p, c_wchar_p)),
    (_CC, "HcsShutDownComputeSystem"): (HRESULT, (c_void_p, c_void_p, c_wchar_p)),
    (_CC, "HcsTerminateComputeSystem"): (HRESULT, (c_void_p, c_void_p, c_wchar_p)),
    (_CC, "HcsPauseComputeSystem"): (HRESULT, (c_void_p, c_void_p, c_wchar_p)),
    (_CC, "HcsResumeComputeSystem"): (HRESULT, (c_void_p, c_void_p, c_wchar_p)),
    (_CC, "HcsSaveComputeSystem"): (HRESULT, (c_void_p, c_void_p, c_wchar_p)),
    (_CC, "HcsGetComputeSystemProperties"): (HRESULT, (c_void_p, c_void_p, c_wchar_p)),
    (_CC, "HcsModifyComputeSystem"): (HRESULT, (c_void_p, c_void_p, c_wchar_p, c_void_p)),
    (_CC, "HcsEnumerateComputeSystems"): (HRESULT, (c_wchar_p, c_void_p)),
    # HcsSetComputeSystemCallback(HCS_SYSTEM, HCS_EVENT_OPTIONS, const void*, HCS_EVENT_CALLBACK)
    (_CC, "HcsSetComputeSystemCallback"): (HRESULT, (c_void_p, c_uint32, c_void_p, c_void_p)),
    # Optional exports (newer Windows builds; the binding marks them required=False):
    # HcsCrashComputeSystem.md: (HCS_SYSTEM, HCS_OPERATION, PCWSTR options /*CrashOptions*/)
    (_CC, "HcsCrashComputeSystem"): (HRESULT, (c_void_p, c_void_p, c_wchar_p)),
    # HcsWaitForComputeSystemExit.md (Windows 10 2104 / Server 2022):
    # (HCS_SYSTEM, DWORD timeoutMs, PWSTR* result /*SystemExitStatus, LocalFree*/)
    (_CC, "HcsWaitForComputeSystemExit"): (HRESULT, (c_void_p, DWORD, PWSTR_OUT)),
    # ---- computecore.dll: processes
    (_CC, "HcsCreateProcess"): (HRESULT, (c_void_p, c_wchar_p, c_void_p, c_void_p, HANDLE_OUT)),
    (_CC, "HcsOpenProcess"): (HRESULT, (c_void_p, DWORD, DWORD, HANDLE_OUT)),
    (_CC, "HcsCloseProcess"): (None, (c_void_p,)),
    (_CC, "HcsTerminateProcess"): (HRESULT, (c_void_p, c_void_p, c_wchar_p)),
    (_CC, "HcsSignalProcess"): (HRESULT, (c_void_p, c_void_p, c_wchar_p)),
    (_CC, "HcsGetProcessInfo"): (HRESULT, (c_void_p, c_void_p)),
    (_CC, "HcsGetProcessProperties"): (HRESULT, (c_void_p, c_void_p, c_wchar_p)),
    (_CC, "HcsModifyProcess"): (HRESULT, (c_void_p, c_void_p, c_wchar_p)),
    (_CC, "HcsSetProcessCallback"): (HRESULT, (c_void_p, c_uint32, c_void_p, c_void_p)),
    # HcsWaitForProcessExit.md (Windows 10 2104 / Server 2022):
    # (HCS_PROCESS, DWORD timeoutMs, PWSTR* result /*ProcessStatus, LocalFree*/)
    (_CC, "HcsWaitForProcessExit"): (HRESULT, (c_void_p, DWORD, PWSTR_OUT)),
    # ---- computecore.dll: service and VM utilities
    (_CC, "HcsGetServiceProperties"): (HRESULT, (c_wchar_p, PWSTR_OUT)),
    (_CC, "HcsGrantVmAccess"): (HRESULT, (c_wchar_p, c_wchar_p)),
    (_CC, "HcsRevokeVmAccess"): (HRESULT, (c_wchar_p, c_wchar_p)),
    # HcsGrantVmGroupAccess.md / HcsRevokeVmGroupAccess.md: (PCWSTR filePath)
    (_CC, "HcsGrantVmGroupAccess"): (HRESULT, (c_wchar_p,)),
    (_CC, "HcsRevokeVmGroupAccess"): (HRESULT, (c_wchar_p,)),
    (_CC, "HcsCreateEmptyGuestStateFile"): (HRESULT, (c_wchar_p,)),
    (_CC, "HcsCreateEmptyRuntimeStateFile"): (HRESULT, (c_wchar_p,)),
    # ---- computestorage.dll (all synchronous, HRESULT)
    (_CS, "HcsSetupBaseOSLayer"): (HRESULT, (c_wchar_p, HANDLE, c_wchar_p)),
    (_CS, "HcsInitializeWritableLayer"): (HRESULT, (c_wchar_p, c_wchar_p, c_wchar_p)),
    (_CS, "HcsFormatWritableLayerVhd"): (HRESULT, (HANDLE,)),
    (_CS, "HcsAttachLayerStorageFilter"): (HRESULT, (c_wchar_p, c_wchar_p)),
    (_CS, "HcsDetachLayerStorageFilter"): (HRESULT, (c_wchar_p,)),
    (_CS, "HcsImportLayer"): (HRESULT, (c_wchar_p, c_wchar_p, c_wchar_p)),
    (_CS, "HcsExportLayer"): (HRESULT, (c_wchar_p, c_wchar_p, c_wchar_p, c_wchar_p)),
    (_CS, "HcsDestroyLayer"): (HRESULT, (c_wchar_p,)),
    (_CS, "HcsGetLayerVhdMountPath"): (HRESULT, (HANDLE, PWSTR_OUT)),
    # ---- virtdisk.dll (return Win32 error codes as DWORD)
    # CreateVirtualDisk(PVIRTUAL_STORAGE_TYPE, PCWSTR, VIRTUAL_DISK_ACCESS_MASK,
    #                   PSECURITY_DESCRIPTOR,
    #                   CREATE_VIRTUAL_DISK_FLAG, ULONG, PCREATE_VIRTUAL_DISK_PARAMETERS,
    #                   LPOVERLAPPED, PHANDLE)
    (_VD, "CreateVirtualDisk"): (
        DWORD,
        (
            c_void_p,
            c_wchar_p,
            c_uint32,
            c_void_p,
            c_uint32,
            c_uint32,
            c_void_p,
            c_void_p,
            HANDLE_OUT,
        ),
    ),
    # OpenVirtualDisk(PVIRTUAL_STORAGE_TYPE, PCWSTR, VIRTUAL_DISK_ACCESS_MASK,
    #                 OPEN_VIRTUAL_DISK_FLAG,
    #                 POPEN_VIRTUAL_DISK_PARAMETERS, PHANDLE)
    (_VD, "OpenVirtualDisk"): (
        DWORD,
        (c_void_p, c_wchar_p, c_uint32, c_uint32, c_void_p, HANDLE_OUT),
    ),
    # AttachVirtualDisk(HANDLE, PSECURITY_DESCRIPTOR, ATTACH_VIRTUAL_DISK_FLAG, ULONG,
    #                   PATTACH_VIRTUAL_DISK_PARAMETERS, LPOVERLAPPED)
    (_VD, "AttachVirtualDisk"): (DWORD, (HANDLE, c_void_p, c_uint32, c_uint32, c_void_p, c_void_p)),
    # DetachVirtualDisk(HANDLE, DETACH_VIRTUAL_DISK_FLAG, ULONG)
    (_VD, "DetachVirtualDisk"): (DWORD, (HANDLE, c_uint32, c_uint32)),
    # ---- computenetwork.dll (synchronous; ErrorRecord out-strings freed with CoTaskMemFree)
    (_CN, "HcnEnumerateNetworks"): (HRESULT, (c_wchar_p, PWSTR_OUT, PWSTR_OUT)),
    (_CN, "HcnCreateNetwork"): (HRESULT, (POINTER(GUID), c_wchar_p, HANDLE_OUT, PWSTR_OUT)),
    (_CN, "HcnOpenNetwork"): (HRESULT, (POINTER(GUID), HANDLE_OUT, PWSTR_OUT)),
    (_CN, "HcnModifyNetwork"): (HRESULT, (c_void_p, c_wchar_p, PWSTR_OUT)),
    (_CN, "HcnQueryNetworkProperties"): (HRESULT, (c_void_p, c_wchar_p, PWSTR_OUT, PWSTR_OUT)),
    (_CN, "HcnDeleteNetwork"): (HRESULT, (POINTER(GUID), PWSTR_OUT)),
    (_CN, "HcnCloseNetwork"): (HRESULT, (c_void_p,)),
    (_CN, "HcnEnumerateEndpoints"): (HRESULT, (c_wchar_p, PWSTR_OUT, PWSTR_OUT)),
    (_CN, "HcnCreateEndpoint"): (
        HRESULT,
        (c_void_p, POINTER(GUID), c_wchar_p, HANDLE_OUT, PWSTR_OUT),
    ),
    (_CN, "HcnOpenEndpoint"): (HRESULT, (POINTER(GUID), HANDLE_OUT, PWSTR_OUT)),
    (_CN, "HcnModifyEndpoint"): (HRESULT, (c_void_p, c_wchar_p, PWSTR_OUT)),
    (_CN, "HcnQueryEndpointProperties"): (HRESULT, (c_void_p, c_wchar_p, PWSTR_OUT, PWSTR_OUT)),
    (_CN, "HcnDeleteEndpoint"): (HRESULT, (POINTER(GUID), PWSTR_OUT)),
    (_CN, "HcnCloseEndpoint"): (HRESULT, (c_void_p,)),
    # HcnRegisterServiceCallback.md: (HCN_NOTIFICATION_CALLBACK, void* Context,
    # HCN_CALLBACK* CallbackHandle); HcnUnregisterServiceCallback.md: (HCN_CALLBACK)
    (_CN, "HcnRegisterServiceCallback"): (HRESULT, (c_void_p, c_void_p, HANDLE_OUT)),
    (_CN, "HcnUnregisterServiceCallback"): (HRESULT, (c_void_p,)),
    # ---- kernel32.dll / ole32.dll
    ("kernel32.dll", "LocalFree"): (c_void_p, (c_void_p,)),  # HLOCAL LocalFree(HLOCAL)
    ("kernel32.dll", "CloseHandle"): (c_int32, (c_void_p,)),  # BOOL CloseHandle(HANDLE)
    ("ole32.dll", "CoTaskMemFree"): (None, (c_void_p,)),  # void CoTaskMemFree(LPVOID)
}


_FUNC_BASE: type = ctypes.CFUNCTYPE(None).__bases__[0]  # ctypes._CFuncPtr


def abi_kind(ctype: Any) -> str:
    """The ABI class of a ctypes type: ``void``, ``i32``, ``u32``, ``u64``, ``ptr``, ``wstr``...

    Any pointer (``c_void_p``, ``POINTER(X)``, a CFUNCTYPE) is ``ptr``: the same register on x64.
    Signedness of 32-bit integers is kept because the binding reads HRESULTs as signed.
    """
    if ctype is None:
        return "void"
    if ctype is c_wchar_p:
        return "wstr"
    if ctype is c_void_p or ctype is ctypes.c_char_p:
        return "ptr"
    if isinstance(ctype, type) and issubclass(ctype, ctypes._Pointer):
        return "ptr"
    if isinstance(ctype, type) and issubclass(ctype, _FUNC_BASE):
        return "ptr"
    size = ctypes.sizeof(ctype)
    signed = ctype(-1).value == -1
    return f"{'i' if signed else 'u'}{size * 8}"
