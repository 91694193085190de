"""Serialisation, parsing, version detection and helpers of the schema models."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

import pytest
from schema_test_data import load

from hcs_sandbox.errors import HcsSandboxError, SchemaError
from hcs_sandbox.schema import (
    Attachment,
    AttachmentType,
    BasicInformation,
    Battery,
    Chipset,
    ComPort,
    ComputeSystem,
    ComputeSystemProperties,
    Devices,
    EndpointPolicy,
    GuestConnection,
    HostComputeEndpoint,
    HostComputeNetwork,
    HostComputeQuery,
    Keyboard,
    ModifyRequestType,
    ModifySettingRequest,
    NetworkAdapter,
    NetworkFlags,
    PauseOptions,
    PauseReason,
    ProcessModifyRequest,
    ProcessParameters,
    Properties,
    ResultError,
    SaveOptions,
    SaveType,
    SchemaModel,
    Scsi,
    ServiceProperties,
    Services,
    Shutdown,
    ShutdownOptions,
    State,
    StdHandle,
    SystemExitStatus,
    SystemPropertyQuery,
    SystemPropertyType,
    SystemQuery,
    Topology,
    Uefi,
    UefiBootEntry,
    Version,
    VirtualMachine,
    VirtualMachineMemory,
    VirtualMachineProcessor,
    fields_newer_than,
    known_fields,
    required_schema_version,
    schema_field,
    set_fields,
    undocumented_fields,
    unknown_keys,
)

DOCUMENTS = [
    "windows-sandbox-document.json",
    "tutorial-vm.json",
    "hcsshim-wcow-uvm.json",
]


def _minimal_vm() -> ComputeSystem:
    return ComputeSystem(
        Owner="hcs-sandbox",
        SchemaVersion=Version.of((2, 1)),
        ShouldTerminateOnLastHandleClosed=True,
        VirtualMachine=VirtualMachine(
            Chipset=Chipset(
                Uefi=Uefi(
                    BootThis=UefiBootEntry(
                        DeviceType="ScsiDrive", DevicePath="primary", DiskNumber=0
                    )
                )
            ),
            ComputeTopology=Topology(
                Memory=VirtualMachineMemory(SizeInMB=2048),
                Processor=VirtualMachineProcessor(Count=2),
            ),
            Devices=Devices(
                Scsi={
                    "primary": Scsi(
                        Attachments={
                            "0": Attachment(Type=AttachmentType.VIRTUAL_DISK, Path="C:\\a.vhdx")
                        }
                    )
                },
                Keyboard=Keyboard(),
            ),
        ),
    )


# ------------------------------------------------------------------------ to_dict


def test_to_dict_omits_unset_fields_and_keeps_empty_objects() -> None:
    doc = _minimal_vm().to_dict()
    assert doc == {
        "Owner": "hcs-sandbox",
        "SchemaVersion": {"Major": 2, "Minor": 1},
        "ShouldTerminateOnLastHandleClosed": True,
        "VirtualMachine": {
            "Chipset": {
                "Uefi": {
                    "BootThis": {
                        "DeviceType": "ScsiDrive",
                        "DevicePath": "primary",
                        "DiskNumber": 0,
                    }
                }
            },
            "ComputeTopology": {"Memory": {"SizeInMB": 2048}, "Processor": {"Count": 2}},
            "Devices": {
                "Scsi": {
                    "primary": {"Attachments": {"0": {"Type": "VirtualDisk", "Path": "C:\\a.vhdx"}}}
                },
                "Keyboard": {},
            },
        },
    }


def test_enums_serialise_as_their_json_strings() -> None:
    doc = SaveOptions(SaveType=SaveType.AS_TEMPLATE, SaveStateFilePath="C:\\s.vmrs").to_dict()
    assert doc == {"SaveType": "AsTemplate", "SaveStateFilePath": "C:\\s.vmrs"}
    assert type(doc["SaveType"]) is str
    text = PauseOptions(SuspensionLevel="Suspend").to_json()
    assert json.loads(text) == {"SuspensionLevel": "Suspend"}


def test_false_and_zero_are_set_values_not_omitted() -> None:
    doc = ComputeSystem(ShouldTerminateOnLastHandleClosed=False).to_dict()
    assert doc == {"ShouldTerminateOnLastHandleClosed": False}
    assert UefiBootEntry(DiskNumber=0).to_dict() == {"DiskNumber": 0}


def test_map_keys_are_strings_and_int_flags_are_ints() -> None:
    devices = Devices(ComPorts={"0": ComPort(NamedPipe="\\\\.\\pipe\\x")})
    assert devices.to_dict() == {"ComPorts": {"0": {"NamedPipe": "\\\\.\\pipe\\x"}}}
    net = HostComputeNetwork(Flags=NetworkFlags.ENABLE_DNS_PROXY | NetworkFlags.ENABLE_DHCP_SERVER)
    out = net.to_dict()
    assert out == {"Flags": 3}
    assert type(out["Flags"]) is int
    assert json.loads(net.to_json()) == {"Flags": 3}


def test_models_inside_any_fields_are_serialised() -> None:
    request = ModifySettingRequest(
        ResourcePath="VirtualMachine/Devices/NetworkAdapters/{abc}",
        RequestType=ModifyRequestType.ADD,
        Settings=NetworkAdapter(EndpointId="abc", MacAddress="00-15-5D-00-00-01"),
    )
    assert request.to_dict() == {
        "ResourcePath": "VirtualMachine/Devices/NetworkAdapters/{abc}",
        "RequestType": "Add",
        "Settings": {"EndpointId": "abc", "MacAddress": "00-15-5D-00-00-01"},
    }
    # A bare number is a valid Settings (memory resize, HcsModifyComputeSystem.md).
    resize = ModifySettingRequest(
        ResourcePath="VirtualMachine/ComputeTopology/Memory/SizeInMB", RequestType="Update"
    )
    resize.Settings = 4096
    assert resize.to_dict()["Settings"] == 4096


def test_to_json_is_plain_json_dumps() -> None:
    model = _minimal_vm()
    assert json.loads(model.to_json()) == model.to_dict()
    assert model.to_json(sort_keys=True) == json.dumps(model.to_dict(), sort_keys=True)


# ------------------------------------------------------------------------ round trips


@pytest.mark.parametrize("name", DOCUMENTS)
def test_real_documents_round_trip_exactly(name: str) -> None:
    raw = load(name)
    model = ComputeSystem.from_dict(raw)
    assert model.to_dict() == raw
    assert unknown_keys(raw, ComputeSystem) == []


def test_windows_sandbox_document_parses_into_typed_fields() -> None:
    model = ComputeSystem.from_dict(load("windows-sandbox-document.json"))
    vm = model.VirtualMachine
    assert vm is not None
    assert vm.ComputeTopology is not None
    memory = vm.ComputeTopology.Memory
    assert memory is not None
    assert memory.SharedMemoryMB == 2048
    assert memory.Backing == "Virtual"
    assert vm.RunInSilo is not None
    assert vm.RunInSilo.NotifySiloJobCreated is True
    assert vm.Devices is not None
    assert vm.Devices.Battery == Battery()
    assert vm.Devices.Scsi is not None
    attachment = vm.Devices.Scsi["primary"].Attachments
    assert attachment is not None
    assert attachment["0"].CachingMode == "ReadOnlyCached"
    assert vm.RestoreState is not None
    assert vm.RestoreState.TemplateSystemId == "48e7facb-2a65-4a83-bfef-03e3c2faae16"


def test_round_trip_of_a_built_model() -> None:
    model = _minimal_vm()
    assert ComputeSystem.from_dict(model.to_dict()) == model
    assert ComputeSystem.from_json(model.to_json()) == model


def test_hcn_network_document_round_trips() -> None:
    raw = load("hcn-nat-network.json")
    net = HostComputeNetwork.from_dict(raw)
    assert net.to_dict() == raw
    assert net.Type == "NAT"
    assert net.Ipams is not None
    assert net.Ipams[0].Subnets is not None
    assert net.Ipams[0].Subnets[0].IpAddressPrefix == "192.168.100.0/24"


# ------------------------------------------------------------------------ tolerant parsing


def test_unknown_keys_are_ignored_and_reported_by_unknown_keys() -> None:
    raw = {
        "Owner": "x",
        "Frobnicate": 1,
        "VirtualMachine": {"StopOnReset": True, "Gizmo": {}},
    }
    model = ComputeSystem.from_dict(raw)
    assert model.to_dict() == {"Owner": "x", "VirtualMachine": {"StopOnReset": True}}
    assert sorted(unknown_keys(raw, ComputeSystem)) == ["Frobnicate", "VirtualMachine.Gizmo"]


def test_missing_keys_and_nulls_stay_unset() -> None:
    model = Properties.from_dict({"Id": "a", "State": None})
    assert model.Id == "a"
    assert model.State is None
    assert model.to_dict() == {"Id": "a"}


def test_unknown_enum_strings_are_kept_as_strings() -> None:
    props = Properties.from_dict({"State": "Hibernating", "SystemType": "VirtualMachine"})
    assert props.State == "Hibernating"
    assert props.SystemType == "VirtualMachine"
    assert isinstance(props.SystemType, str)
    assert props.to_dict() == {"State": "Hibernating", "SystemType": "VirtualMachine"}


def test_known_enum_strings_become_members() -> None:
    props = Properties.from_dict({"State": "Running"})
    assert props.State is State.RUNNING


@pytest.mark.parametrize(
    ("data", "path"),
    [
        (
            {"VirtualMachine": {"ComputeTopology": {"Memory": {"SizeInMB": "big"}}}},
            "ComputeSystem.VirtualMachine.ComputeTopology.Memory.SizeInMB",
        ),
        (
            {"ShouldTerminateOnLastHandleClosed": 1},
            "ComputeSystem.ShouldTerminateOnLastHandleClosed",
        ),
        ({"VirtualMachine": {"StopOnReset": "yes"}}, "ComputeSystem.VirtualMachine.StopOnReset"),
        ({"VirtualMachine": []}, "ComputeSystem.VirtualMachine"),
        (
            {
                "VirtualMachine": {
                    "Devices": {"Scsi": {"p": {"Attachments": {"0": {"ReadOnly": 0}}}}}
                }
            },
            "ComputeSystem.VirtualMachine.Devices.Scsi[p].Attachments[0].ReadOnly",
        ),
        ({"SchemaVersion": {"Major": True}}, "ComputeSystem.SchemaVersion.Major"),
        (
            {"VirtualMachine": {"Devices": {"Scsi": []}}},
            "ComputeSystem.VirtualMachine.Devices.Scsi",
        ),
        ({"Owner": 5}, "ComputeSystem.Owner"),
    ],
)
def test_wrong_types_raise_schema_error_with_path(data: dict[str, Any], path: str) -> None:
    with pytest.raises(SchemaError) as info:
        ComputeSystem.from_dict(data)
    assert info.value.path == path
    assert path in str(info.value)
    assert isinstance(info.value, HcsSandboxError)
    assert isinstance(info.value, ValueError)


def test_lenient_mode_drops_wrongly_typed_values_only() -> None:
    data = {
        "Id": "x",
        "Stopped": "no",
        "ProcessList": [{"ProcessId": 4, "ImageName": 7}, "junk", None],
        "Statistics": {"Uptime100ns": "?", "Processor": {"TotalRuntime100ns": 10}},
    }
    props = Properties.from_dict(data, lenient=True)
    assert props.to_dict() == {
        "Id": "x",
        "ProcessList": [{"ProcessId": 4}],
        "Statistics": {"Processor": {"TotalRuntime100ns": 10}},
    }
    with pytest.raises(SchemaError):
        Properties.from_dict(data)


@pytest.mark.parametrize("data", [None, [], "x", 3, True])
def test_top_level_must_be_an_object(data: object) -> None:
    with pytest.raises(SchemaError):
        ComputeSystem.from_dict(data)
    with pytest.raises(SchemaError):
        ComputeSystem.from_dict(data, lenient=True)


@pytest.mark.parametrize("text", ["", "{", "not json", b"\xff"])
def test_from_json_rejects_invalid_json_with_schema_error(text: str | bytes) -> None:
    with pytest.raises(SchemaError, match="not valid JSON"):
        Properties.from_json(text)


def test_from_dict_does_not_mutate_its_input() -> None:
    raw = load("windows-sandbox-document.json")
    before = copy.deepcopy(raw)
    ComputeSystem.from_dict(raw).to_dict()
    assert raw == before


# ------------------------------------------------------------------------ versions


def test_required_version_of_the_windows_sandbox_document_is_its_declared_version() -> None:
    model = ComputeSystem.from_dict(load("windows-sandbox-document.json"))
    assert required_schema_version(model) == (2, 4)
    assert model.SchemaVersion is not None
    assert model.SchemaVersion.as_tuple() == (2, 4)
    newer = fields_newer_than(model, (2, 3))
    assert "VirtualMachine.ComputeTopology.Memory.FaultClusterSizeShift" in newer
    assert "VirtualMachine.Devices.Scsi[primary].DisableInterruptBatching" in newer
    assert "VirtualMachine.GuestConnection.UseHostTimeZone" in newer
    assert fields_newer_than(model, (2, 4)) == []


def test_undocumented_fields_of_the_windows_sandbox_document() -> None:
    model = ComputeSystem.from_dict(load("windows-sandbox-document.json"))
    found = set(undocumented_fields(model))
    assert {
        "VirtualMachine.RunInSilo",
        "VirtualMachine.RunInSilo.SiloBaseOsPath",
        "VirtualMachine.ComputeTopology.Memory.SharedMemoryMB",
        "VirtualMachine.ComputeTopology.Memory.Backing",
        "VirtualMachine.Devices.Licensing",
        "VirtualMachine.Devices.Scsi[primary].Attachments[0].NoWriteHardening",
        "VirtualMachine.Devices.GuestCrashReporting.WindowsCrashSettings.DumpType",
    } <= found
    assert "VirtualMachine.ComputeTopology.Memory.SizeInMB" not in found


def test_tutorial_document_needs_2_1() -> None:
    model = ComputeSystem.from_dict(load("tutorial-vm.json"))
    assert required_schema_version(model) == (2, 1)
    assert undocumented_fields(model) == ["VirtualMachine.ComputeTopology.Memory.Backing"]


def test_version_detection_on_built_models() -> None:
    assert required_schema_version(ComputeSystem()) == (2, 0)
    vm = VirtualMachine(Services=Services(Shutdown=Shutdown()))
    assert required_schema_version(vm) == (2, 5)
    assert fields_newer_than(vm, (2, 1)) == ["Services", "Services.Shutdown"]
    assert fields_newer_than(vm, (2, 5)) == []
    attachment = Attachment(Path="x", SupportEncryptedFiles=True)
    assert required_schema_version(attachment) == (2, 6)
    assert fields_newer_than(attachment, (2, 5)) == ["SupportEncryptedFiles"]
    assert required_schema_version(ShutdownOptions(Force=True)) == (2, 5)
    assert required_schema_version(GuestConnection(UseHostTimeZone=True)) == (2, 4)


def test_versions_inside_any_fields_count() -> None:
    request = ModifySettingRequest(
        ResourcePath="VirtualMachine/Devices/NetworkAdapters/x",
        Settings=NetworkAdapter(EndpointId="x", InstanceId="x"),
    )
    assert fields_newer_than(request, (2, 3)) == ["Settings.InstanceId"]
    assert required_schema_version(request) == (2, 4)


def test_set_fields_paths() -> None:
    paths = [path for path, _info in set_fields(_minimal_vm())]
    assert "VirtualMachine.Devices.Scsi[primary].Attachments[0].Path" in paths
    assert "VirtualMachine.Devices.Keyboard" in paths
    assert "VirtualMachine.Devices.Mouse" not in paths


# ------------------------------------------------------------------------ catalogue


def test_known_fields_lists_json_names_per_schema_type() -> None:
    fields = known_fields()
    assert {"SizeInMB", "AllowOvercommit", "Backing"} <= fields["VirtualMachine_Memory"]
    assert "ShouldTerminateOnLastHandleClosed" in fields["ComputeSystem"]
    assert fields["Keyboard"] == set()
    assert "ID" in known_fields("hcn")["HostComputeNetwork"]
    assert "HostComputeNetwork" not in known_fields("hcs")


def test_generated_documents_only_use_known_keys() -> None:
    doc = _minimal_vm().to_dict()
    assert unknown_keys(doc, ComputeSystem) == []


def test_undocumented_field_must_name_a_source() -> None:
    with pytest.raises(ValueError, match="must name its source"):
        schema_field("Mystery", documented=False)


def test_fields_must_be_declared_with_schema_field() -> None:
    @dataclass(kw_only=True)
    class _Broken(SchemaModel):  # leading underscore: not registered in the catalogue
        Plain: int | None = None

    with pytest.raises(TypeError, match="schema_field"):
        _Broken().to_dict()


# ------------------------------------------------------------------------ helpers


def test_version_helpers() -> None:
    assert Version.of((2, 5)).to_dict() == {"Major": 2, "Minor": 5}
    assert Version(Major=2).as_tuple() == (2, 0)


def test_basic_information() -> None:
    service = ServiceProperties.from_dict(
        {"Properties": [{"SupportedSchemaVersions": [{"Major": 2, "Minor": 6}, {"Major": 1}]}]},
        lenient=True,
    )
    basic = service.basic_information()
    assert basic is not None
    assert basic.highest() == (2, 6)
    assert basic.highest(1) == (1, 0)
    assert basic.highest(3) is None
    assert basic.supports((2, 4))
    assert not basic.supports((2, 7))
    assert BasicInformation().highest() is None
    assert ServiceProperties(Properties=["x"]).basic_information() is None
    assert ServiceProperties().basic_information() is None


def test_property_query_and_system_query() -> None:
    query = SystemPropertyQuery(
        PropertyTypes=[SystemPropertyType.STATISTICS, SystemPropertyType.MEMORY]
    )
    assert query.to_dict() == {"PropertyTypes": ["Statistics", "Memory"]}
    assert SystemPropertyQuery().to_json() == "{}"
    filt = SystemQuery(Owners=["hcs-sandbox"], Types=["VirtualMachine"])
    assert filt.to_dict() == {"Types": ["VirtualMachine"], "Owners": ["hcs-sandbox"]}


def test_process_documents() -> None:
    params = ProcessParameters(
        CommandLine="cmd.exe /c echo hi",
        Environment={"A": "1"},
        CreateStdOutPipe=True,
        ConsoleSize=[25, 80],
    )
    assert params.to_dict() == {
        "CommandLine": "cmd.exe /c echo hi",
        "Environment": {"A": "1"},
        "CreateStdOutPipe": True,
        "ConsoleSize": [25, 80],
    }
    assert ProcessModifyRequest.resize(30, 120).to_dict() == {
        "Operation": "ConsoleSize",
        "ConsoleSize": {"Height": 30, "Width": 120},
    }
    assert ProcessModifyRequest.close(StdHandle.STD_IN).to_dict() == {
        "Operation": "CloseHandle",
        "CloseHandle": {"Handle": "StdIn"},
    }


def test_pause_options_with_notification() -> None:
    raw = {"SuspensionLevel": "Suspend", "HostedNotification": {"Reason": "Save"}}
    model = PauseOptions.from_dict(raw)
    assert model.HostedNotification is not None
    assert model.HostedNotification.Reason is PauseReason.SAVE
    assert model.to_dict() == raw
    assert required_schema_version(model) == (2, 1)


def test_result_error_messages() -> None:
    error = ResultError.from_dict(
        {
            "Error": -2143878901,
            "ErrorMessage": "The virtual machine could not be started.",
            "ErrorEvents": [
                {"Message": "The virtual machine could not be started.", "EventId": 1},
                {"Message": "Insufficient memory.", "Provider": "x"},
                {"EventId": 3},
            ],
        }
    )
    assert error.messages() == [
        "The virtual machine could not be started.",
        "Insufficient memory.",
    ]


def test_exit_status_event_document() -> None:
    status = SystemExitStatus.from_dict(
        {"Status": -2147023895, "ExitType": "UnexpectedExit", "Attribution": [{"x": 1}]}
    )
    assert status.ExitType == "UnexpectedExit"
    assert status.Attribution == [{"x": 1}]


def test_compute_system_list() -> None:
    items = ComputeSystemProperties.list_from_json(
        json.dumps([{"Id": "a", "State": "Running", "Owner": "o", "Bogus": 1}, 5])
    )
    assert [i.Id for i in items] == ["a"]
    assert items[0].State is State.RUNNING
    assert ComputeSystemProperties.list_from_json("") == []
    with pytest.raises(SchemaError):
        ComputeSystemProperties.list_from_json("{}")
    with pytest.raises(SchemaError):
        ComputeSystemProperties.list_from_json("[")


def test_hcn_endpoint_with_port_mapping_and_query() -> None:
    endpoint = HostComputeEndpoint(
        Name="ep1",
        HostComputeNetwork="net-guid",
        Policies=[EndpointPolicy.port_mapping(internal_port=3389, external_port=13389)],
        SchemaVersion=Version.of((2, 0)),
    )
    assert endpoint.to_dict() == {
        "Name": "ep1",
        "HostComputeNetwork": "net-guid",
        "Policies": [
            {
                "Type": "PortMapping",
                "Settings": {"Protocol": 6, "InternalPort": 3389, "ExternalPort": 13389},
            }
        ],
        "SchemaVersion": {"Major": 2, "Minor": 0},
    }
    query = HostComputeQuery.create({"Name": "ep1"})
    doc = query.to_dict()
    assert doc == {
        "SchemaVersion": {"Major": 2, "Minor": 0},
        "Flags": 0,
        "Filter": '{"Name": "ep1"}',
    }
    assert json.loads(doc["Filter"]) == {"Name": "ep1"}
    assert HostComputeQuery.create(detailed=True).to_dict()["Flags"] == 1
    assert "Filter" not in HostComputeQuery.create().to_dict()


def test_models_compare_by_value() -> None:
    assert Uefi(EnableDebugger=True) == Uefi(EnableDebugger=True)
    assert Uefi(EnableDebugger=True) != Uefi(EnableDebugger=False)
