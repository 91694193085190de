"""Structures, constants, GUID helpers and the prototype table of hcs_sandbox.native."""

from __future__ import annotations

import ctypes
import uuid
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hcs_sandbox import errors
from hcs_sandbox.native import prototypes
from hcs_sandbox.native import types as nt

DATA = Path(__file__).parent / "data"
POINTER_SIZE = ctypes.sizeof(ctypes.c_void_p)
x64_only = pytest.mark.skipif(POINTER_SIZE != 8, reason="x64 layout")


# -- structures: x64 layouts from ComputeDefs.h / virtdisk.h -----------------------------


def _offsets(struct: type[ctypes.Structure]) -> dict[str, int]:
    return {name: getattr(struct, name).offset for name, *_ in struct._fields_}


@x64_only
def test_hcs_event_layout() -> None:
    assert ctypes.sizeof(nt.HCS_EVENT) == 24
    assert _offsets(nt.HCS_EVENT) == {"Type": 0, "EventData": 8, "Operation": 16}


@x64_only
def test_process_information_layout() -> None:
    assert ctypes.sizeof(nt.HCS_PROCESS_INFORMATION) == 32
    assert _offsets(nt.HCS_PROCESS_INFORMATION) == {
        "ProcessId": 0,
        "Reserved": 4,
        "StdInput": 8,
        "StdOutput": 16,
        "StdError": 24,
    }


@x64_only
def test_create_options_1_layout() -> None:
    assert _offsets(nt.HCS_CREATE_OPTIONS_1) == {
        "Version": 0,
        "UserToken": 8,
        "SecurityDescriptor": 16,
        "CallbackOptions": 24,
        "CallbackContext": 32,
        "Callback": 40,
    }


def test_guid_and_storage_type_layout() -> None:
    assert ctypes.sizeof(nt.GUID) == 16
    assert ctypes.alignment(nt.GUID) == 4
    assert ctypes.sizeof(nt.VIRTUAL_STORAGE_TYPE) == 20
    assert _offsets(nt.VIRTUAL_STORAGE_TYPE) == {"DeviceId": 0, "VendorId": 4}


@x64_only
def test_create_virtual_disk_parameters_version2_layout() -> None:
    params = nt.CREATE_VIRTUAL_DISK_PARAMETERS()
    base = ctypes.addressof(params)

    def at(field: str) -> int:
        return ctypes.addressof(getattr(params.Version2, field)) - base

    # The union is 8-aligned (it holds ULONGLONG and pointers): Version2 starts at 8.
    assert ctypes.addressof(params.Version2) - base == 8
    assert at("UniqueId") == 8
    assert nt._CreateVersion2.MaximumSize.offset + 8 == 24
    assert nt._CreateVersion2.ParentPath.offset + 8 == 48
    assert nt._CreateVersion2.OpenFlags.offset + 8 == 64
    assert at("ParentVirtualStorageType") == 68
    assert at("SourceVirtualStorageType") == 88
    assert at("ResiliencyGuid") == 108
    # Version 4 is the largest member: the structure has the header's full size.
    assert ctypes.sizeof(nt.CREATE_VIRTUAL_DISK_PARAMETERS) == 8 + ctypes.sizeof(nt._CreateVersion4)


@x64_only
def test_open_and_attach_parameters_layout() -> None:
    assert nt._OpenVersion2.ReadOnly.offset == 4  # BOOL is 4 bytes, not a C++ bool
    assert nt._OpenVersion2.ResiliencyGuid.offset == 8
    assert ctypes.sizeof(nt.OPEN_VIRTUAL_DISK_PARAMETERS) == 4 + 40
    assert nt.ATTACH_VIRTUAL_DISK_PARAMETERS.u.offset == 8
    assert ctypes.sizeof(nt.ATTACH_VIRTUAL_DISK_PARAMETERS) == 24


def test_vhdx_storage_type() -> None:
    vst = nt.VIRTUAL_STORAGE_TYPE.vhdx()
    assert vst.DeviceId == 3
    assert str(vst.VendorId) == "ec984aec-a0f9-47e9-901f-71415a66345b"


def test_vhdx_storage_type_is_a_copy_each_time() -> None:
    """The vendor GUID is parsed once; each structure holds its own copy of it."""
    first = nt.VIRTUAL_STORAGE_TYPE.vhdx()
    first.VendorId.Data1 = 0
    first.DeviceId = 0
    second = nt.VIRTUAL_STORAGE_TYPE.vhdx()
    assert second.DeviceId == 3
    assert str(second.VendorId) == "ec984aec-a0f9-47e9-901f-71415a66345b"
    assert ctypes.addressof(second.VendorId) != ctypes.addressof(first.VendorId)


def test_constants() -> None:
    assert nt.INFINITE == 0xFFFFFFFF
    assert nt.GENERIC_ALL == 0x10000000
    assert ctypes.c_uint64(-1).value == nt.HCS_INVALID_OPERATION_ID
    assert nt.VIRTUAL_DISK_ACCESS_ALL == 0x003F0000
    assert nt.HcsEventType.OPERATION_CALLBACK == 0x01000000
    assert nt.HcsEventOptions.ENABLE_OPERATION_CALLBACKS == 1
    assert nt.HcsOperationType.CRASH == 15
    ev = nt.HCS_EVENT(Type=nt.HcsEventType.GROUP_OPERATION_INFO)
    assert ev.Type == nt.HcsEventType.GROUP_OPERATION_INFO  # unsigned field compares as written


# -- GUID ------------------------------------------------------------------------------


@given(st.uuids())
def test_guid_round_trips_and_has_windows_memory_layout(value: uuid.UUID) -> None:
    guid = nt.GUID.from_uuid(value)
    assert guid.to_uuid() == value
    assert bytes(guid) == value.bytes_le  # Data1..3 little-endian, Data4 as bytes
    assert nt.GUID.from_string(str(value)) == guid
    assert nt.GUID.from_string("{" + str(value).upper() + "}") == guid
    assert guid.to_string(upper=True) == str(value).upper()
    assert hash(nt.GUID.from_string(str(value))) == hash(guid)


@given(st.text(max_size=40))
def test_guid_parser_rejects_garbage_with_spec_error(text: str) -> None:
    try:
        parsed = uuid.UUID(text.strip().strip("{}"))
    except ValueError:
        parsed = None
    if parsed is None:
        with pytest.raises(errors.SpecError, match="invalid GUID") as info:
            nt.GUID.from_string(text)
        assert info.value.remedy
        return
    try:
        guid = nt.GUID.from_string(text)
    except errors.SpecError:
        # uuid.UUID accepts forms Windows does not write (no dashes, "urn:uuid:" prefix).
        stripped = text.strip()
        assert (
            len(stripped.strip("{}")) != 36
            or stripped.count("-") != 4
            or stripped.startswith("{") != stripped.endswith("}")
        )
        return
    assert guid.to_uuid() == parsed


@pytest.mark.parametrize(
    "text",
    ["", "not-a-guid", "{EC984AEC-A0F9-47E9-901F-71415A66345B", "EC984AECA0F947E9901F71415A66345B"],
)
def test_guid_parser_examples(text: str) -> None:
    with pytest.raises(errors.SpecError, match="invalid GUID"):
        nt.GUID.from_string(text)


def test_guid_pointer() -> None:
    assert nt.guid_pointer(None) is None
    guid = nt.GUID.from_string("EC984AEC-A0F9-47E9-901F-71415A66345B")
    ptr = nt.guid_pointer(guid)
    assert ptr is not None
    assert ptr.contents == guid


# -- the prototype table -----------------------------------------------------------------

REQUIRED = {
    "computecore.dll": """HcsCreateOperation HcsCloseOperation HcsWaitForOperationResult
        HcsGetOperationResult HcsWaitForOperationResultAndProcessInfo
        HcsGetOperationResultAndProcessInfo HcsSetOperationCallback HcsCancelOperation
        HcsGetOperationType HcsGetOperationId HcsCreateComputeSystem HcsOpenComputeSystem
        HcsCloseComputeSystem HcsStartComputeSystem HcsShutDownComputeSystem
        HcsTerminateComputeSystem HcsPauseComputeSystem HcsResumeComputeSystem
        HcsSaveComputeSystem HcsGetComputeSystemProperties HcsModifyComputeSystem
        HcsEnumerateComputeSystems HcsSetComputeSystemCallback HcsCreateProcess HcsOpenProcess
        HcsCloseProcess HcsTerminateProcess HcsSignalProcess HcsGetProcessInfo
        HcsGetProcessProperties HcsModifyProcess HcsSetProcessCallback HcsGetServiceProperties
        HcsGrantVmAccess HcsRevokeVmAccess HcsCreateEmptyGuestStateFile
        HcsCreateEmptyRuntimeStateFile""",
    "computestorage.dll": """HcsSetupBaseOSLayer HcsInitializeWritableLayer
        HcsFormatWritableLayerVhd HcsAttachLayerStorageFilter HcsDetachLayerStorageFilter
        HcsImportLayer HcsExportLayer HcsDestroyLayer HcsGetLayerVhdMountPath""",
    "virtdisk.dll": "CreateVirtualDisk OpenVirtualDisk AttachVirtualDisk DetachVirtualDisk",
    "computenetwork.dll": """HcnEnumerateNetworks HcnCreateNetwork HcnOpenNetwork
        HcnModifyNetwork HcnQueryNetworkProperties HcnDeleteNetwork HcnCloseNetwork
        HcnEnumerateEndpoints HcnCreateEndpoint HcnOpenEndpoint HcnModifyEndpoint
        HcnQueryEndpointProperties HcnDeleteEndpoint HcnCloseEndpoint""",
    "kernel32.dll": "LocalFree CloseHandle",
    "ole32.dll": "CoTaskMemFree",
}


def test_table_covers_every_required_export() -> None:
    for dll, names in REQUIRED.items():
        table = prototypes.by_dll(dll)
        for name in names.split():
            assert name in table, f"{dll}!{name} missing from the prototype table"
            assert table[name].required, name


def test_table_entries_are_well_formed() -> None:
    names = [p.name for p in prototypes.PROTOTYPES]
    assert len(names) == len(set(names))
    out_wstr = ctypes.POINTER(ctypes.c_wchar_p)
    for proto in prototypes.PROTOTYPES:
        assert proto.dll in prototypes.DLLS
        assert proto.source.strip(), proto.name
        assert proto.min_os.strip(), proto.name
        assert out_wstr not in proto.argtypes, f"{proto.name}: PWSTR* must be POINTER(c_void_p)"
        hresult_type = getattr(ctypes, "HRESULT", None)  # Windows only
        assert hresult_type is None or hresult_type not in (proto.restype, *proto.argtypes)
        if proto.returns == "hresult":
            assert proto.restype is ctypes.c_int32, proto.name
        if proto.returns == "void":
            assert proto.restype is None, proto.name
        if proto.dll == "virtdisk.dll":
            assert proto.returns == "win32"
            assert proto.restype is ctypes.c_uint32
        if proto.dll == "computenetwork.dll":
            assert "api/hcn/Reference" in proto.source
        if proto.dll in ("computecore.dll", "computestorage.dll"):
            assert f"api/hcs/Reference/{proto.name}.md" in proto.source


def test_shutdown_has_capital_d() -> None:
    assert prototypes.lookup("HcsShutDownComputeSystem") is not None
    assert prototypes.lookup("HcsShutdownComputeSystem") is None


# -- HCN error codes match HCNHResult.md ---------------------------------------------------


def _hcn_doc_table() -> dict[int, str]:
    table: dict[int, str] = {}
    for line in (DATA / "HCNHResult-table.txt").read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, value = line.split()
        table[int(value, 16)] = name
    return table


def test_hcn_codes_match_microsoft_table() -> None:
    doc = _hcn_doc_table()
    assert len(doc) == 55
    ours = {0x803B0000 | code: name for code, name in errors.HCN_CODES.items()}
    assert ours == doc
    for value, name in doc.items():
        assert errors.hresult_name(value) == name
