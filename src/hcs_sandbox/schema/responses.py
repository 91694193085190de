"""Queries sent to HCS and the documents it returns (parse these with ``lenient=True``).

Sources: MicrosoftDocs/Virtualization-Documentation ``virtualization/api/hcs/SchemaReference.md``
(2021 revision), ``HcsGetComputeSystemProperties.md``, ``HcsGetServiceProperties.md``,
``HcsEnumerateComputeSystems.md``, ``HCS_EVENT.md``; hcsshim ``internal/hcs/schema2/*.go``.
"""

# schema_field() returns dataclasses.field(default=None, ...): an immutable default.
# ruff: noqa: RUF009

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from hcs_sandbox.errors import SchemaError
from hcs_sandbox.schema._base import SchemaModel, VersionTuple, schema_field
from hcs_sandbox.schema.compute import Version
from hcs_sandbox.schema.enums import (
    GetPropertyType,
    NotificationType,
    OsType,
    State,
    SystemPropertyType,
    SystemType,
)

__all__ = [
    "BasicInformation",
    "ComputeSystemProperties",
    "ErrorEvent",
    "EventData",
    "GuestConnectionInfo",
    "MemoryInformationForVm",
    "MemoryStats",
    "ProcessDetails",
    "ProcessStatus",
    "ProcessorStats",
    "Properties",
    "PropertyResponse",
    "ResultError",
    "ServiceProperties",
    "ServicePropertyQuery",
    "SharedMemoryRegionInfo",
    "Statistics",
    "StorageStats",
    "SystemExitStatus",
    "SystemPropertyQuery",
    "SystemQuery",
    "VirtualNodeInfo",
    "VmMemory",
]


# --------------------------------------------------------------------------------------
# Queries
# --------------------------------------------------------------------------------------


@dataclass(kw_only=True)
class SystemPropertyQuery(SchemaModel):
    """SchemaReference.md#System_PropertyQuery (``HcsGetComputeSystemProperties``).

    No property types (or ``{}``) → basic properties only.
    """

    SCHEMA_NAME = "System_PropertyQuery"
    SOURCE = "SchemaReference.md#System_PropertyQuery; hcsshim property_query.go"

    PropertyTypes: list[SystemPropertyType | str] | None = schema_field(
        "PropertyTypes", since=(2, 1)
    )
    Queries: dict[str, Any] | None = schema_field("Queries", since=(2, 5))


@dataclass(kw_only=True)
class ServicePropertyQuery(SchemaModel):
    """SchemaReference.md#Service_PropertyQuery (``HcsGetServiceProperties``)."""

    SCHEMA_NAME = "Service_PropertyQuery"
    SOURCE = "SchemaReference.md#Service_PropertyQuery; hcsshim service_property_query.go"

    PropertyTypes: list[GetPropertyType | str] | None = schema_field("PropertyTypes", since=(2, 1))
    PropertyQueries: dict[str, Any] | None = schema_field("PropertyQueries", since=(2, 5))


@dataclass(kw_only=True)
class SystemQuery(SchemaModel):
    """SchemaReference.md#SystemQuery: the filter of ``HcsEnumerateComputeSystems``."""

    SOURCE = "SchemaReference.md#SystemQuery; hcsshim system_query.go"

    Ids: list[str] | None = schema_field("Ids", since=(2, 1))
    Names: list[str] | None = schema_field("Names", since=(2, 1))
    Types: list[SystemType | str] | None = schema_field("Types", since=(2, 1))
    Owners: list[str] | None = schema_field("Owners", since=(2, 1))


# --------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------


@dataclass(kw_only=True)
class EventData(SchemaModel):
    """SchemaReference.md#EventData."""

    SOURCE = "SchemaReference.md#EventData; hcsshim event_data.go"

    Type: str | None = schema_field("Type", since=(2, 1))
    Value: str | None = schema_field("Value", since=(2, 1))


@dataclass(kw_only=True)
class ErrorEvent(SchemaModel):
    """SchemaReference.md#ErrorEvent."""

    SOURCE = "SchemaReference.md#ErrorEvent; hcsshim error_event.go"

    Message: str | None = schema_field("Message", since=(2, 1))
    StackTrace: str | None = schema_field("StackTrace", since=(2, 1))
    Provider: str | None = schema_field("Provider", since=(2, 1))
    EventId: int | None = schema_field("EventId", since=(2, 1))
    Flags: int | None = schema_field("Flags", since=(2, 1))
    Source: str | None = schema_field("Source", since=(2, 1))
    Data: list[EventData] | None = schema_field("Data", since=(2, 1))


@dataclass(kw_only=True)
class ResultError(SchemaModel):
    """SchemaReference.md#ResultError: the result document of a failed operation.

    ``Attribution`` records (2.4) are kept as opaque JSON.
    """

    SOURCE = "SchemaReference.md#ResultError; hcsshim result_error.go"

    Error: int | None = schema_field("Error", since=(2, 1))
    ErrorMessage: str | None = schema_field("ErrorMessage", since=(2, 1))
    ErrorEvents: list[ErrorEvent] | None = schema_field("ErrorEvents", since=(2, 4))
    Attribution: list[Any] | None = schema_field("Attribution", since=(2, 4))

    def messages(self) -> list[str]:
        """ErrorMessage followed by each distinct event message."""
        out = [self.ErrorMessage] if self.ErrorMessage else []
        for event in self.ErrorEvents or []:
            if event.Message and event.Message not in out:
                out.append(event.Message)
        return out


# --------------------------------------------------------------------------------------
# Events
# --------------------------------------------------------------------------------------


@dataclass(kw_only=True)
class SystemExitStatus(SchemaModel):
    """SchemaReference.md#SystemExitStatus: EventData of ``HcsEventSystemExited``."""

    SOURCE = "SchemaReference.md#SystemExitStatus; hcsshim system_exit_status.go"

    Status: int | None = schema_field("Status", since=(2, 1))
    ExitType: NotificationType | str | None = schema_field("ExitType", since=(2, 2))
    Attribution: list[Any] | None = schema_field("Attribution", since=(2, 4))


@dataclass(kw_only=True)
class ProcessStatus(SchemaModel):
    """SchemaReference.md#ProcessStatus: EventData of ``HcsEventProcessExited``.

    ``ExitCode`` is valid only when ``LastWaitResult`` is S_OK (0) and ``Exited``.
    """

    SOURCE = "SchemaReference.md#ProcessStatus; hcsshim process_status.go"

    ProcessId: int | None = schema_field("ProcessId", since=(2, 1))
    Exited: bool | None = schema_field("Exited", since=(2, 1))
    ExitCode: int | None = schema_field("ExitCode", since=(2, 1))
    LastWaitResult: int | None = schema_field("LastWaitResult", since=(2, 1))


# --------------------------------------------------------------------------------------
# System properties
# --------------------------------------------------------------------------------------


@dataclass(kw_only=True)
class VmMemory(SchemaModel):
    """SchemaReference.md#VmMemory."""

    SOURCE = "SchemaReference.md#VmMemory; hcsshim vm_memory.go"

    AvailableMemory: int | None = schema_field("AvailableMemory", since=(2, 1))
    AvailableMemoryBuffer: int | None = schema_field("AvailableMemoryBuffer", since=(2, 1))
    ReservedMemory: int | None = schema_field("ReservedMemory", since=(2, 1))
    AssignedMemory: int | None = schema_field("AssignedMemory", since=(2, 1))
    SlpActive: bool | None = schema_field("SlpActive", since=(2, 1))
    BalancingEnabled: bool | None = schema_field("BalancingEnabled", since=(2, 1))
    DmOperationInProgress: bool | None = schema_field("DmOperationInProgress", since=(2, 1))


@dataclass(kw_only=True)
class VirtualNodeInfo(SchemaModel):
    """SchemaReference.md#VirtualNodeInfo."""

    SOURCE = "SchemaReference.md#VirtualNodeInfo; hcsshim virtual_node_info.go"

    VirtualNodeIndex: int | None = schema_field("VirtualNodeIndex", since=(2, 1))
    PhysicalNodeNumber: int | None = schema_field("PhysicalNodeNumber", since=(2, 1))
    VirtualProcessorCount: int | None = schema_field("VirtualProcessorCount", since=(2, 1))
    MemoryUsageInPages: int | None = schema_field("MemoryUsageInPages", since=(2, 1))


@dataclass(kw_only=True)
class MemoryInformationForVm(SchemaModel):
    """SchemaReference.md#MemoryInformationForVm (``Properties.Memory``)."""

    SOURCE = "SchemaReference.md#MemoryInformationForVm; hcsshim memory_information_for_vm.go"

    VirtualNodeCount: int | None = schema_field("VirtualNodeCount", since=(2, 1))
    VirtualMachineMemory: VmMemory | None = schema_field("VirtualMachineMemory", since=(2, 1))
    VirtualNodes: list[VirtualNodeInfo] | None = schema_field("VirtualNodes", since=(2, 1))


@dataclass(kw_only=True)
class ProcessorStats(SchemaModel):
    """SchemaReference.md#ProcessorStats."""

    SOURCE = "SchemaReference.md#ProcessorStats; hcsshim processor_stats.go"

    TotalRuntime100ns: int | None = schema_field("TotalRuntime100ns", since=(2, 1))
    RuntimeUser100ns: int | None = schema_field("RuntimeUser100ns", since=(2, 1))
    RuntimeKernel100ns: int | None = schema_field("RuntimeKernel100ns", since=(2, 1))


@dataclass(kw_only=True)
class MemoryStats(SchemaModel):
    """SchemaReference.md#MemoryStats."""

    SOURCE = "SchemaReference.md#MemoryStats; hcsshim memory_stats.go"

    MemoryUsageCommitBytes: int | None = schema_field("MemoryUsageCommitBytes", since=(2, 1))
    MemoryUsageCommitPeakBytes: int | None = schema_field(
        "MemoryUsageCommitPeakBytes", since=(2, 1)
    )
    MemoryUsagePrivateWorkingSetBytes: int | None = schema_field(
        "MemoryUsagePrivateWorkingSetBytes", since=(2, 1)
    )


@dataclass(kw_only=True)
class StorageStats(SchemaModel):
    """SchemaReference.md#StorageStats."""

    SOURCE = "SchemaReference.md#StorageStats; hcsshim storage_stats.go"

    ReadCountNormalized: int | None = schema_field("ReadCountNormalized", since=(2, 1))
    ReadSizeBytes: int | None = schema_field("ReadSizeBytes", since=(2, 1))
    WriteCountNormalized: int | None = schema_field("WriteCountNormalized", since=(2, 1))
    WriteSizeBytes: int | None = schema_field("WriteSizeBytes", since=(2, 1))


@dataclass(kw_only=True)
class Statistics(SchemaModel):
    """SchemaReference.md#Statistics (timestamps are ISO-8601 strings)."""

    SOURCE = "SchemaReference.md#Statistics; hcsshim statistics.go"

    Timestamp: str | None = schema_field("Timestamp", since=(2, 1))
    ContainerStartTime: str | None = schema_field("ContainerStartTime", since=(2, 1))
    Uptime100ns: int | None = schema_field("Uptime100ns", since=(2, 1))
    Processor: ProcessorStats | None = schema_field("Processor", since=(2, 1))
    Memory: MemoryStats | None = schema_field("Memory", since=(2, 1))
    Storage: StorageStats | None = schema_field("Storage", since=(2, 1))


@dataclass(kw_only=True)
class ProcessDetails(SchemaModel):
    """SchemaReference.md#ProcessDetails (``Properties.ProcessList``)."""

    SOURCE = "SchemaReference.md#ProcessDetails; hcsshim process_details.go"

    ProcessId: int | None = schema_field("ProcessId", since=(2, 1))
    ImageName: str | None = schema_field("ImageName", since=(2, 1))
    CreateTimestamp: str | None = schema_field("CreateTimestamp", since=(2, 1))
    UserTime100ns: int | None = schema_field("UserTime100ns", since=(2, 1))
    KernelTime100ns: int | None = schema_field("KernelTime100ns", since=(2, 1))
    MemoryCommitBytes: int | None = schema_field("MemoryCommitBytes", since=(2, 1))
    MemoryWorkingSetPrivateBytes: int | None = schema_field(
        "MemoryWorkingSetPrivateBytes", since=(2, 1)
    )
    MemoryWorkingSetSharedBytes: int | None = schema_field(
        "MemoryWorkingSetSharedBytes", since=(2, 1)
    )


@dataclass(kw_only=True)
class GuestConnectionInfo(SchemaModel):
    """SchemaReference.md#GuestConnectionInfo."""

    SOURCE = "SchemaReference.md#GuestConnectionInfo; hcsshim guest_connection_info.go"

    SupportedSchemaVersions: list[Version] | None = schema_field(
        "SupportedSchemaVersions", since=(2, 1)
    )
    ProtocolVersion: int | None = schema_field("ProtocolVersion", since=(2, 1))
    GuestDefinedCapabilities: Any = schema_field("GuestDefinedCapabilities", since=(2, 1))


@dataclass(kw_only=True)
class SharedMemoryRegionInfo(SchemaModel):
    """SchemaReference.md#SharedMemoryRegionInfo."""

    SOURCE = "SchemaReference.md#SharedMemoryRegionInfo; hcsshim shared_memory_region_info.go"

    SectionName: str | None = schema_field("SectionName", since=(2, 1))
    GuestPhysicalAddress: int | None = schema_field("GuestPhysicalAddress", since=(2, 1))


@dataclass(kw_only=True)
class PropertyResponse(SchemaModel):
    """SchemaReference.md#PropertyResponse (2.5)."""

    SOURCE = "SchemaReference.md#PropertyResponse; hcsshim property_response.go"

    Error: ResultError | None = schema_field("Error", since=(2, 5))
    Response: Any = schema_field("Response", since=(2, 5))


@dataclass(kw_only=True)
class Properties(SchemaModel):
    """SchemaReference.md#Properties: the result of ``HcsGetComputeSystemProperties``.

    Parse with ``lenient=True``.  ``SystemGUID`` is hcsshim-only.
    """

    SOURCE = "SchemaReference.md#Properties; hcsshim properties.go"

    Id: str | None = schema_field("Id", since=(2, 1))
    SystemType: SystemType | str | None = schema_field("SystemType", since=(2, 1))
    RuntimeOsType: OsType | str | None = schema_field("RuntimeOsType", since=(2, 1))
    Name: str | None = schema_field("Name", since=(2, 1))
    Owner: str | None = schema_field("Owner", since=(2, 1))
    RuntimeId: str | None = schema_field("RuntimeId", since=(2, 1))
    SystemGUID: str | None = schema_field(
        "SystemGUID",
        since=None,
        documented=False,
        source="hcsshim internal/hcs/schema2/properties.go",
    )
    RuntimeTemplateId: str | None = schema_field("RuntimeTemplateId", since=(2, 1))
    State: State | str | None = schema_field("State", since=(2, 1))
    Stopped: bool | None = schema_field("Stopped", since=(2, 1))
    ExitType: NotificationType | str | None = schema_field("ExitType", since=(2, 1))
    Memory: MemoryInformationForVm | None = schema_field("Memory", since=(2, 1))
    Statistics: Statistics | None = schema_field("Statistics", since=(2, 1))
    ProcessList: list[ProcessDetails] | None = schema_field("ProcessList", since=(2, 1))
    TerminateOnLastHandleClosed: bool | None = schema_field(
        "TerminateOnLastHandleClosed", since=(2, 1)
    )
    HostingSystemId: str | None = schema_field("HostingSystemId", since=(2, 1))
    SharedMemoryRegionInfo: list[SharedMemoryRegionInfo] | None = schema_field(
        "SharedMemoryRegionInfo", since=(2, 1)
    )
    GuestConnectionInfo: GuestConnectionInfo | None = schema_field(
        "GuestConnectionInfo", since=(2, 1)
    )
    PropertyResponses: dict[str, PropertyResponse] | None = schema_field(
        "PropertyResponses", since=(2, 5)
    )


@dataclass(kw_only=True)
class ComputeSystemProperties(SchemaModel):
    """SchemaReference.md#ComputeSystemProperties (2.5): one entry of the array returned by
    ``HcsEnumerateComputeSystems``."""

    SOURCE = "SchemaReference.md#ComputeSystemProperties; hcsshim compute_system_properties.go"

    Id: str | None = schema_field("Id", since=(2, 5))
    Name: str | None = schema_field("Name", since=(2, 5))
    SystemType: SystemType | str | None = schema_field("SystemType", since=(2, 5))
    State: State | str | None = schema_field("State", since=(2, 5))
    Owner: str | None = schema_field("Owner", since=(2, 5))
    RuntimeId: str | None = schema_field("RuntimeId", since=(2, 5))
    RuntimeOsType: OsType | str | None = schema_field("RuntimeOsType", since=(2, 5))
    HostingSystemId: str | None = schema_field("HostingSystemId", since=(2, 5))
    IsDummy: bool | None = schema_field("IsDummy", since=(2, 5))
    ObRoot: str | None = schema_field("ObRoot", since=(2, 5))
    RuntimeTemplateId: str | None = schema_field("RuntimeTemplateId", since=(2, 5))

    @classmethod
    def list_from_json(cls, text: str) -> list[ComputeSystemProperties]:
        """Parse the JSON array ``HcsEnumerateComputeSystems`` returns (tolerantly)."""
        try:
            data = json.loads(text) if text else []
        except ValueError as exc:
            raise SchemaError(f"compute system list: not valid JSON ({exc})", path="") from None
        if not isinstance(data, list):
            raise SchemaError("compute system list: expected a JSON array", path="")
        return [cls.from_dict(item, lenient=True) for item in data if isinstance(item, dict)]


# --------------------------------------------------------------------------------------
# Service properties
# --------------------------------------------------------------------------------------


@dataclass(kw_only=True)
class BasicInformation(SchemaModel):
    """SchemaReference.md#BasicInformation: answer to service property type ``Basic``.

    Each entry A.X of ``SupportedSchemaVersions`` means A.0 … A.X are supported.
    """

    SOURCE = "SchemaReference.md#BasicInformation; hcsshim basic_information.go"

    SupportedSchemaVersions: list[Version] | None = schema_field(
        "SupportedSchemaVersions", since=(2, 1)
    )

    def highest(self, major: int = 2) -> VersionTuple | None:
        """The highest supported ``(major, minor)``, or None when ``major`` is not listed."""
        minors = [v.Minor or 0 for v in self.SupportedSchemaVersions or [] if v.Major == major]
        return (major, max(minors)) if minors else None

    def supports(self, version: VersionTuple) -> bool:
        """Whether ``version`` is supported (same major, minor ≤ a listed minor)."""
        best = self.highest(version[0])
        return best is not None and version[1] <= best[1]


@dataclass(kw_only=True)
class ServiceProperties(SchemaModel):
    """SchemaReference.md#ServiceProperties: result of ``HcsGetServiceProperties``.

    ``Properties`` holds one entry per requested property type, in order.
    """

    SOURCE = "SchemaReference.md#ServiceProperties; hcsshim service_properties.go"

    Properties: list[Any] | None = schema_field("Properties", since=(2, 1))
    PropertyResponses: dict[str, PropertyResponse] | None = schema_field(
        "PropertyResponses", since=(2, 5)
    )

    def basic_information(self, index: int = 0) -> BasicInformation | None:
        """Entry ``index`` of ``Properties`` parsed as BasicInformation, if it is an object."""
        items = self.Properties or []
        if index >= len(items) or not isinstance(items[index], dict):
            return None
        return BasicInformation.from_dict(items[index], lenient=True)
