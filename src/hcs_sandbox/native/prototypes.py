"""The ONE table of every native function hcs-sandbox calls.

Each :class:`Prototype` says which DLL exports the function, its C return and argument types
as ctypes types, how its result is to be read (``returns``), the Microsoft document (or
header mirror) the signature was taken from, and the oldest Windows that exports it.

The binding (``native/api.py``) builds ``FUNCTYPE(restype, *argtypes)`` from this table; the
simulator declares its own prototypes independently, and ``tests/native`` cross-checks the
two readings by size and kind.

Sources (see also ``docs/windows-notes.md#native``):

- computecore / computestorage: MicrosoftDocs/Virtualization-Documentation
  ``virtualization/api/hcs/Reference/<Name>.md``; exact C types from microsoft/windows-rs
  ``crates/libs/sys/src/Windows/Win32/System/HostComputeSystem/mod.rs`` (win32metadata).
- computenetwork: ``virtualization/api/hcn/Reference/<Name>.md``; windows-rs
  ``Win32/System/HostComputeNetwork/mod.rs``.
- virtdisk: learn.microsoft.com ``virtdisk.h`` reference; windows-rs ``Win32/Storage/Vhd``;
  microsoft/go-winio ``vhd/vhd.go``.  These return a Win32 error code (DWORD), not an HRESULT.
- kernel32 / ole32: learn.microsoft.com ``winbase.h`` LocalFree, ``handleapi.h`` CloseHandle,
  ``combaseapi.h`` CoTaskMemFree.
"""

from __future__ import annotations

from ctypes import POINTER, c_int32, c_uint32, c_uint64, c_void_p, c_wchar_p
from typing import TYPE_CHECKING, Literal

from hcs_sandbox._frozen import Frozen
from hcs_sandbox.native.types import (
    ATTACH_VIRTUAL_DISK_PARAMETERS,
    CREATE_VIRTUAL_DISK_PARAMETERS,
    GUID,
    HCN_NOTIFICATION_CALLBACK,
    HCS_EVENT_CALLBACK,
    HCS_OPERATION_COMPLETION,
    HCS_PROCESS_INFORMATION,
    OPEN_VIRTUAL_DISK_PARAMETERS,
    VIRTUAL_STORAGE_TYPE,
)

if TYPE_CHECKING:
    from ctypes import _CData

    CType = type[_CData]

__all__ = [
    "DLLS",
    "PROTOTYPES",
    "Prototype",
    "ReturnKind",
    "by_dll",
    "lookup",
]

ReturnKind = Literal["hresult", "win32", "void", "handle", "value", "bool"]
"""How to read a return value: ``hresult`` (HRESULT, negative int32 = failure), ``win32``
(a Win32 error code, 0 = success), ``void``, ``handle`` (NULL = failure), ``value`` (a plain
number), ``bool`` (Win32 BOOL, 0 = failure, details in GetLastError)."""

DLLS = (
    "computecore.dll",
    "computestorage.dll",
    "computenetwork.dll",
    "virtdisk.dll",
    "kernel32.dll",
    "ole32.dll",
)

RS5 = "Windows 10 1809 / Server 2019"
OS_2104 = "Windows 10 2104 (21H1 SDK) / Server 2022"
WIN7 = "Windows 7 / Server 2008 R2"
WIN8 = "Windows 8 / Server 2012"
WIN2000 = "Windows 2000"


class Prototype(Frozen):
    """One exported C function.

    Immutable and compared by value, as the ``@dataclass(frozen=True)`` it was (a plain
    class: ``dataclasses`` costs ~5 ms of every process importing the binding).

    ``required``: False for exports only newer Windows builds have (absence disables a
    feature).  ``use_last_error``: True when failures are reported through GetLastError
    (kernel32).
    """

    _FIELDS = (
        "dll",
        "name",
        "restype",
        "argtypes",
        "returns",
        "source",
        "min_os",
        "required",
        "use_last_error",
    )
    __slots__ = _FIELDS
    # _FIELDS again, spelled out: mypy checks match statements only against literal strings.
    __match_args__ = (
        "dll",
        "name",
        "restype",
        "argtypes",
        "returns",
        "source",
        "min_os",
        "required",
        "use_last_error",
    )

    dll: str
    name: str
    restype: CType | None
    argtypes: tuple[CType, ...]
    returns: ReturnKind
    source: str
    min_os: str
    required: bool
    use_last_error: bool

    def __init__(  # noqa: PLR0917 - positional, like the dataclass it replaces
        self,
        dll: str,
        name: str,
        restype: CType | None,
        argtypes: tuple[CType, ...],
        returns: ReturnKind,
        source: str,
        min_os: str,
        required: bool = True,
        use_last_error: bool = False,
    ) -> None:
        put = object.__setattr__
        put(self, "dll", dll)
        put(self, "name", name)
        put(self, "restype", restype)
        put(self, "argtypes", argtypes)
        put(self, "returns", returns)
        put(self, "source", source)
        put(self, "min_os", min_os)
        put(self, "required", required)
        put(self, "use_last_error", use_last_error)


# Shorthands for the conventions table of docs/architecture.md.
HR = c_int32  # HRESULT
H = c_void_p  # HCS_SYSTEM / HCS_PROCESS / HCS_OPERATION / HCN_* / HANDLE / void*
S = c_wchar_p  # PCWSTR
OUT_STR = POINTER(c_void_p)  # PWSTR* (caller frees, native/strings.py)
OUT_H = POINTER(c_void_p)  # HCS_SYSTEM* / HANDLE* / HCN_*
DW = c_uint32  # DWORD / ULONG
ENUM = c_int32  # C enums (win32metadata: i32)
REFGUID = POINTER(GUID)
PI = POINTER(HCS_PROCESS_INFORMATION)


def _hcs(name: str) -> str:
    return (
        f"MicrosoftDocs/Virtualization-Documentation virtualization/api/hcs/Reference/{name}.md;"
        " windows-rs Win32/System/HostComputeSystem"
    )


def _hcn(name: str) -> str:
    return (
        f"MicrosoftDocs/Virtualization-Documentation virtualization/api/hcn/Reference/{name}.md;"
        " windows-rs Win32/System/HostComputeNetwork"
    )


def _vhd(name: str) -> str:
    return (
        f"learn.microsoft.com virtdisk/nf-virtdisk-{name.lower()}; windows-rs Win32/Storage/Vhd;"
        " go-winio vhd/vhd.go"
    )


def _cc(
    name: str,
    restype: CType | None,
    *argtypes: CType,
    returns: ReturnKind = "hresult",
    min_os: str = RS5,
    required: bool = True,
) -> Prototype:
    return Prototype(
        "computecore.dll", name, restype, argtypes, returns, _hcs(name), min_os, required
    )


def _cs(name: str, *argtypes: CType) -> Prototype:
    return Prototype("computestorage.dll", name, HR, argtypes, "hresult", _hcs(name), RS5)


def _cn(name: str, *argtypes: CType) -> Prototype:
    return Prototype("computenetwork.dll", name, HR, argtypes, "hresult", _hcn(name), RS5)


def _vd(name: str, *argtypes: CType) -> Prototype:
    return Prototype("virtdisk.dll", name, DW, argtypes, "win32", _vhd(name), WIN7)


PROTOTYPES: tuple[Prototype, ...] = (
    # ---- computecore.dll: operations ------------------------------------------------
    # HcsCreateOperation(const void* context, HCS_OPERATION_COMPLETION callback): context
    # first per win32metadata and hcsshim internal/computecore; the .md lists them reversed.
    _cc("HcsCreateOperation", H, H, HCS_OPERATION_COMPLETION, returns="handle"),
    _cc("HcsCloseOperation", None, H, returns="void"),
    _cc("HcsWaitForOperationResult", HR, H, DW, OUT_STR),
    _cc("HcsGetOperationResult", HR, H, OUT_STR),
    _cc("HcsWaitForOperationResultAndProcessInfo", HR, H, DW, PI, OUT_STR),
    _cc("HcsGetOperationResultAndProcessInfo", HR, H, PI, OUT_STR),
    _cc("HcsSetOperationCallback", HR, H, H, HCS_OPERATION_COMPLETION),
    _cc("HcsCancelOperation", HR, H),
    _cc("HcsGetOperationType", ENUM, H, returns="value"),  # HCS_OPERATION_TYPE
    _cc("HcsGetOperationId", c_uint64, H, returns="value"),  # UINT64
    # ---- computecore.dll: compute systems ---------------------------------------------
    # HcsCreateComputeSystem(id, configuration, operation, const SECURITY_DESCRIPTOR*, HCS_SYSTEM*)
    _cc("HcsCreateComputeSystem", HR, S, S, H, H, OUT_H),
    _cc("HcsOpenComputeSystem", HR, S, DW, OUT_H),
    _cc("HcsCloseComputeSystem", None, H, returns="void"),
    _cc("HcsStartComputeSystem", HR, H, H, S),
    _cc("HcsShutDownComputeSystem", HR, H, H, S),  # capital D (vmcompute's is "Shutdown")
    _cc("HcsTerminateComputeSystem", HR, H, H, S),
    _cc("HcsPauseComputeSystem", HR, H, H, S),
    _cc("HcsResumeComputeSystem", HR, H, H, S),
    _cc("HcsSaveComputeSystem", HR, H, H, S),
    _cc("HcsGetComputeSystemProperties", HR, H, H, S),
    _cc("HcsModifyComputeSystem", HR, H, H, S, H),  # ..., PCWSTR configuration, HANDLE identity
    _cc("HcsEnumerateComputeSystems", HR, S, H),  # (PCWSTR query, HCS_OPERATION)
    # (HCS_SYSTEM, HCS_EVENT_OPTIONS, const void* context, HCS_EVENT_CALLBACK)
    _cc("HcsSetComputeSystemCallback", HR, H, ENUM, H, HCS_EVENT_CALLBACK),
    _cc("HcsCrashComputeSystem", HR, H, H, S, required=False),
    _cc("HcsWaitForComputeSystemExit", HR, H, DW, OUT_STR, min_os=OS_2104, required=False),
    # ---- computecore.dll: processes ----------------------------------------------------
    _cc("HcsCreateProcess", HR, H, S, H, H, OUT_H),  # (sys, params, op, SD*, HCS_PROCESS*)
    _cc("HcsOpenProcess", HR, H, DW, DW, OUT_H),  # (sys, processId, requestedAccess, out)
    _cc("HcsCloseProcess", None, H, returns="void"),
    _cc("HcsTerminateProcess", HR, H, H, S),
    _cc("HcsSignalProcess", HR, H, H, S),
    _cc("HcsGetProcessInfo", HR, H, H),
    _cc("HcsGetProcessProperties", HR, H, H, S),
    _cc("HcsModifyProcess", HR, H, H, S),
    _cc("HcsSetProcessCallback", HR, H, ENUM, H, HCS_EVENT_CALLBACK),
    _cc("HcsWaitForProcessExit", HR, H, DW, OUT_STR, min_os=OS_2104, required=False),
    # ---- computecore.dll: service and utilities -----------------------------------------
    _cc("HcsGetServiceProperties", HR, S, OUT_STR),  # synchronous
    _cc("HcsGrantVmAccess", HR, S, S),  # (PCWSTR vmId, PCWSTR filePath)
    _cc("HcsRevokeVmAccess", HR, S, S),
    _cc("HcsGrantVmGroupAccess", HR, S, required=False),  # min OS disputed, see notes
    _cc("HcsRevokeVmGroupAccess", HR, S, required=False),
    _cc("HcsCreateEmptyGuestStateFile", HR, S),
    _cc("HcsCreateEmptyRuntimeStateFile", HR, S),
    # ---- computestorage.dll (synchronous, HRESULT) -----------------------------------
    _cs("HcsSetupBaseOSLayer", S, H, S),  # (layerPath, HANDLE vhdHandle, options)
    _cs("HcsInitializeWritableLayer", S, S, S),  # (writableLayerPath, layerData, options)
    _cs("HcsFormatWritableLayerVhd", H),  # (HANDLE vhdHandle)
    _cs("HcsAttachLayerStorageFilter", S, S),  # (layerPath, layerData)
    _cs("HcsDetachLayerStorageFilter", S),  # (layerPath)
    _cs("HcsImportLayer", S, S, S),  # (layerPath, sourceFolderPath, layerData)
    _cs("HcsExportLayer", S, S, S, S),  # (layerPath, exportFolderPath, layerData, options)
    _cs("HcsDestroyLayer", S),  # (layerPath)
    _cs("HcsGetLayerVhdMountPath", H, OUT_STR),  # (HANDLE vhdHandle, PWSTR* mountPath)
    # ---- computenetwork.dll (synchronous, HRESULT, PWSTR* ErrorRecord last) ----------
    _cn("HcnEnumerateNetworks", S, OUT_STR, OUT_STR),
    _cn("HcnCreateNetwork", REFGUID, S, OUT_H, OUT_STR),
    _cn("HcnOpenNetwork", REFGUID, OUT_H, OUT_STR),
    _cn("HcnModifyNetwork", H, S, OUT_STR),
    _cn("HcnQueryNetworkProperties", H, S, OUT_STR, OUT_STR),
    _cn("HcnDeleteNetwork", REFGUID, OUT_STR),
    _cn("HcnCloseNetwork", H),
    _cn("HcnEnumerateEndpoints", S, OUT_STR, OUT_STR),
    _cn("HcnCreateEndpoint", H, REFGUID, S, OUT_H, OUT_STR),
    _cn("HcnOpenEndpoint", REFGUID, OUT_H, OUT_STR),
    _cn("HcnModifyEndpoint", H, S, OUT_STR),
    _cn("HcnQueryEndpointProperties", H, S, OUT_STR, OUT_STR),
    _cn("HcnDeleteEndpoint", REFGUID, OUT_STR),
    _cn("HcnCloseEndpoint", H),
    Prototype(
        "computenetwork.dll",
        "HcnRegisterServiceCallback",
        HR,
        (HCN_NOTIFICATION_CALLBACK, H, OUT_H),  # (callback, void* context, HCN_CALLBACK*)
        "hresult",
        _hcn("HcnRegisterServiceCallback"),
        RS5,
        required=False,
    ),
    Prototype(
        "computenetwork.dll",
        "HcnUnregisterServiceCallback",
        HR,
        (H,),
        "hresult",
        _hcn("HcnUnregisterServiceCallback"),
        RS5,
        required=False,
    ),
    # ---- virtdisk.dll (return a Win32 error code, 0 = ERROR_SUCCESS) -----------------
    # (VIRTUAL_STORAGE_TYPE*, PCWSTR path, VIRTUAL_DISK_ACCESS_MASK, PSECURITY_DESCRIPTOR,
    #  CREATE_VIRTUAL_DISK_FLAG, ULONG providerSpecificFlags, CREATE_VIRTUAL_DISK_PARAMETERS*,
    #  LPOVERLAPPED, PHANDLE)
    _vd(
        "CreateVirtualDisk",
        POINTER(VIRTUAL_STORAGE_TYPE),
        S,
        DW,
        H,
        DW,
        DW,
        POINTER(CREATE_VIRTUAL_DISK_PARAMETERS),
        H,
        OUT_H,
    ),
    # (VIRTUAL_STORAGE_TYPE*, PCWSTR, ACCESS_MASK, OPEN_VIRTUAL_DISK_FLAG, PARAMETERS*, PHANDLE)
    _vd(
        "OpenVirtualDisk",
        POINTER(VIRTUAL_STORAGE_TYPE),
        S,
        DW,
        DW,
        POINTER(OPEN_VIRTUAL_DISK_PARAMETERS),
        OUT_H,
    ),
    # (HANDLE, PSECURITY_DESCRIPTOR, ATTACH_VIRTUAL_DISK_FLAG, ULONG, PARAMETERS*, LPOVERLAPPED)
    _vd("AttachVirtualDisk", H, H, DW, DW, POINTER(ATTACH_VIRTUAL_DISK_PARAMETERS), H),
    _vd("DetachVirtualDisk", H, DW, DW),  # (HANDLE, DETACH_VIRTUAL_DISK_FLAG, ULONG)
    # ---- kernel32.dll / ole32.dll ------------------------------------------------------
    Prototype(
        "kernel32.dll",
        "LocalFree",
        H,  # HLOCAL: NULL on success
        (H,),
        "handle",
        "learn.microsoft.com winbase/nf-winbase-localfree",
        WIN2000,
        use_last_error=True,
    ),
    Prototype(
        "kernel32.dll",
        "CloseHandle",
        c_int32,  # BOOL
        (H,),
        "bool",
        "learn.microsoft.com handleapi/nf-handleapi-closehandle",
        WIN2000,
        use_last_error=True,
    ),
    Prototype(
        "ole32.dll",
        "CoTaskMemFree",
        None,
        (H,),
        "void",
        "learn.microsoft.com combaseapi/nf-combaseapi-cotaskmemfree",
        WIN2000,
    ),
)

_BY_NAME: dict[str, Prototype] = {}
for _proto in PROTOTYPES:
    if _proto.name in _BY_NAME:  # pragma: no cover - guarded by a test
        raise RuntimeError(f"duplicate prototype {_proto.name}")
    _BY_NAME[_proto.name] = _proto
del _proto


def lookup(name: str) -> Prototype | None:
    """The prototype of ``name`` (in any DLL), or None."""
    return _BY_NAME.get(name)


def by_dll(dll: str) -> dict[str, Prototype]:
    """The prototypes exported by ``dll`` (``"computecore.dll"``), by name."""
    return {p.name: p for p in PROTOTYPES if p.dll == dll}
