"""The compute-system document given to ``HcsCreateComputeSystem``: ComputeSystem and below.

Field names and "NewInVersion" come from Microsoft's JSON schema reference
(MicrosoftDocs/Virtualization-Documentation ``virtualization/api/hcs/SchemaReference.md``,
2021 revision, cited below as "SchemaReference.md#<Type>") and the published OpenAPI file
``HCS_Schema-Windows_11_SDK_21H2.json``.  Fields only hcsshim knows cite
``microsoft/hcsshim internal/hcs/schema2/<file>.go``; fields only Windows Sandbox's own
document uses cite that dump (MouriNaruto/MouriDocs ``docs/4/ReadMe.md``, "Host Compute
System API JSON Configuration Samples").  Both kinds are marked
``documented=False`` with unknown version (``since=None``).
"""

# schema_field() returns dataclasses.field(default=None, ...): an immutable default.
# ruff: noqa: RUF009

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hcs_sandbox.schema._base import SchemaModel, VersionTuple, schema_field
from hcs_sandbox.schema.enums import (
    ApplySecureBootTemplateType,
    AttachmentType,
    CachingMode,
    MemoryBackingPageSize,
    MemoryBackingType,
    RegistryHive,
    RegistryValueType,
    SerialConsole,
    StateOverride,
    UefiBootDevice,
)

__all__ = [
    "Attachment",
    "Battery",
    "Chipset",
    "ComPort",
    "ComputeSystem",
    "CpuGroup",
    "DebugOptions",
    "Devices",
    "EnhancedModeVideo",
    "GuestConnection",
    "GuestCrashReporting",
    "GuestState",
    "Heartbeat",
    "HvSocket2",
    "HvSocketServiceConfig",
    "HvSocketSystemConfig",
    "IovSettings",
    "KernelIntegration",
    "Keyboard",
    "KvpExchange",
    "LaunchOptions",
    "Licensing",
    "LinuxKernelDirect",
    "Mouse",
    "NetworkAdapter",
    "Plan9",
    "Plan9Share",
    "RdpConnectionOptions",
    "RegistryChanges",
    "RegistryKey",
    "RegistryValue",
    "RestoreState",
    "RunInSilo",
    "Scsi",
    "Services",
    "Shutdown",
    "StorageQoS",
    "Timesync",
    "Topology",
    "Uefi",
    "UefiBootEntry",
    "Version",
    "VideoMonitor",
    "VirtualMachine",
    "VirtualMachineHvSocket",
    "VirtualMachineMemory",
    "VirtualMachineProcessor",
    "VirtualPciDevice",
    "VirtualPciFunction",
    "VirtualSmb",
    "VirtualSmbShare",
    "VirtualSmbShareOptions",
    "WindowsCrashReporting",
]

# Provenance strings for undocumented fields.
WSB = "Windows Sandbox's document (MouriNaruto/MouriDocs docs/4/ReadMe.md)"


def _shim(file: str) -> str:
    return f"hcsshim internal/hcs/schema2/{file}"


# --------------------------------------------------------------------------------------
# Version
# --------------------------------------------------------------------------------------


@dataclass(kw_only=True)
class Version(SchemaModel):
    """SchemaReference.md#Version (also HNS_Schema.md#Version): ``{Major, Minor}``."""

    SOURCE = "SchemaReference.md#Version; hcsshim version.go"

    Major: int | None = schema_field("Major")
    Minor: int | None = schema_field("Minor")

    @classmethod
    def of(cls, version: VersionTuple) -> Version:
        """``Version.of((2, 1))`` → ``Version(Major=2, Minor=1)``."""
        return cls(Major=version[0], Minor=version[1])

    def as_tuple(self) -> VersionTuple:
        """``(Major, Minor)``, unset parts as 0."""
        return (self.Major or 0, self.Minor or 0)


# --------------------------------------------------------------------------------------
# Chipset / firmware
# --------------------------------------------------------------------------------------


@dataclass(kw_only=True)
class UefiBootEntry(SchemaModel):
    """SchemaReference.md#UefiBootEntry (all fields 2.1)."""

    SOURCE = "SchemaReference.md#UefiBootEntry; hcsshim uefi_boot_entry.go"

    DeviceType: UefiBootDevice | str | None = schema_field("DeviceType", since=(2, 1))
    DevicePath: str | None = schema_field("DevicePath", since=(2, 1))
    DiskNumber: int | None = schema_field("DiskNumber", since=(2, 1))
    OptionalData: str | None = schema_field("OptionalData", since=(2, 1))
    VmbFsRootPath: str | None = schema_field("VmbFsRootPath", since=(2, 1))


@dataclass(kw_only=True)
class Uefi(SchemaModel):
    """SchemaReference.md#Uefi."""

    SOURCE = "SchemaReference.md#Uefi; hcsshim uefi.go"

    EnableDebugger: bool | None = schema_field("EnableDebugger")
    SecureBootTemplateId: str | None = schema_field("SecureBootTemplateId")
    ApplySecureBootTemplate: ApplySecureBootTemplateType | str | None = schema_field(
        "ApplySecureBootTemplate", since=(2, 3)
    )
    BootThis: UefiBootEntry | None = schema_field("BootThis")
    Console: SerialConsole | str | None = schema_field("Console")
    StopOnBootFailure: bool | None = schema_field("StopOnBootFailure", since=(2, 2))


@dataclass(kw_only=True)
class LinuxKernelDirect(SchemaModel):
    """SchemaReference.md#LinuxKernelDirect (2.2)."""

    SOURCE = "SchemaReference.md#LinuxKernelDirect; hcsshim linux_kernel_direct.go"

    KernelFilePath: str | None = schema_field("KernelFilePath", since=(2, 2))
    InitRdPath: str | None = schema_field("InitRdPath", since=(2, 2))
    KernelCmdLine: str | None = schema_field("KernelCmdLine", since=(2, 2))


@dataclass(kw_only=True)
class Chipset(SchemaModel):
    """SchemaReference.md#Chipset."""

    SOURCE = "SchemaReference.md#Chipset; hcsshim chipset.go"

    Uefi: Uefi | None = schema_field("Uefi")
    IsNumLockDisabled: bool | None = schema_field("IsNumLockDisabled")
    BaseBoardSerialNumber: str | None = schema_field("BaseBoardSerialNumber")
    ChassisSerialNumber: str | None = schema_field("ChassisSerialNumber")
    ChassisAssetTag: str | None = schema_field("ChassisAssetTag")
    EnableHibernation: bool | None = schema_field("EnableHibernation", since=(2, 5))
    UseUtc: bool | None = schema_field("UseUtc", since=(2, 1))
    LinuxKernelDirect: LinuxKernelDirect | None = schema_field("LinuxKernelDirect", since=(2, 2))


# --------------------------------------------------------------------------------------
# Topology
# --------------------------------------------------------------------------------------


@dataclass(kw_only=True)
class VirtualMachineMemory(SchemaModel):
    """SchemaReference.md#VirtualMachine_Memory.

    ``Backing`` is not in SchemaReference.md but Microsoft's own Tutorial.md sample and
    Windows Sandbox use it (hcsshim ``virtual_machine_memory.go``).  The last four fields
    appear only in Windows Sandbox's document.
    """

    SCHEMA_NAME = "VirtualMachine_Memory"
    SOURCE = "SchemaReference.md#VirtualMachine_Memory; hcsshim virtual_machine_memory.go"

    SizeInMB: int | None = schema_field("SizeInMB", since=(2, 1))
    AllowOvercommit: bool | None = schema_field("AllowOvercommit", since=(2, 1))
    Backing: MemoryBackingType | str | None = schema_field(
        "Backing",
        since=None,
        documented=False,
        source=_shim("virtual_machine_memory.go") + "; Tutorial.md sample; " + WSB,
    )
    BackingPageSize: MemoryBackingPageSize | str | None = schema_field(
        "BackingPageSize", since=(2, 2)
    )
    FaultClusterSizeShift: int | None = schema_field("FaultClusterSizeShift", since=(2, 4))
    DirectMapFaultClusterSizeShift: int | None = schema_field(
        "DirectMapFaultClusterSizeShift", since=(2, 4)
    )
    PinBackingPages: bool | None = schema_field("PinBackingPages", since=(2, 2))
    ForbidSmallBackingPages: bool | None = schema_field("ForbidSmallBackingPages", since=(2, 2))
    EnableHotHint: bool | None = schema_field("EnableHotHint")
    EnableColdHint: bool | None = schema_field("EnableColdHint")
    EnableColdDiscardHint: bool | None = schema_field("EnableColdDiscardHint", since=(2, 2))
    EnableDeferredCommit: bool | None = schema_field("EnableDeferredCommit", since=(2, 1))
    LowMmioGapInMB: int | None = schema_field("LowMmioGapInMB", since=(2, 3))
    HighMmioBaseInMB: int | None = schema_field("HighMmioBaseInMB", since=(2, 3))
    HighMmioGapInMB: int | None = schema_field("HighMmioGapInMB", since=(2, 3))
    SlitType: str | None = schema_field(
        "SlitType", since=None, documented=False, source=_shim("virtual_machine_memory.go")
    )
    EnablePrivateCompressionStore: bool | None = schema_field(
        "EnablePrivateCompressionStore", since=None, documented=False, source=WSB
    )
    SharedMemoryMB: int | None = schema_field(
        "SharedMemoryMB", since=None, documented=False, source=WSB
    )
    SharedMemoryAccessSids: list[str] | None = schema_field(
        "SharedMemoryAccessSids", since=None, documented=False, source=WSB
    )
    EnableEpf: bool | None = schema_field("EnableEpf", since=None, documented=False, source=WSB)


@dataclass(kw_only=True)
class CpuGroup(SchemaModel):
    """SchemaReference.md#CpuGroup."""

    SOURCE = "SchemaReference.md#CpuGroup; hcsshim cpu_group.go"

    Id: str | None = schema_field("Id", since=(2, 1))


@dataclass(kw_only=True)
class VirtualMachineProcessor(SchemaModel):
    """SchemaReference.md#VirtualMachine_Processor.

    The last four fields appear only in Windows Sandbox's document.
    """

    SCHEMA_NAME = "VirtualMachine_Processor"
    SOURCE = "SchemaReference.md#VirtualMachine_Processor; hcsshim virtual_machine_processor.go"

    Count: int | None = schema_field("Count")
    Limit: int | None = schema_field("Limit", since=(2, 1))
    Weight: int | None = schema_field("Weight", since=(2, 1))
    Reservation: int | None = schema_field("Reservation", since=(2, 4))
    MaximumFrequencyMHz: int | None = schema_field("MaximumFrequencyMHz", since=(2, 4))
    ExposeVirtualizationExtensions: bool | None = schema_field("ExposeVirtualizationExtensions")
    EnablePerfmonPmu: bool | None = schema_field("EnablePerfmonPmu", since=(2, 2))
    EnablePerfmonArchPmu: bool | None = schema_field("EnablePerfmonArchPmu", since=(2, 5))
    EnablePerfmonPebs: bool | None = schema_field("EnablePerfmonPebs", since=(2, 2))
    EnablePerfmonLbr: bool | None = schema_field("EnablePerfmonLbr", since=(2, 2))
    EnablePerfmonIpt: bool | None = schema_field("EnablePerfmonIpt", since=(2, 2))
    EnablePageShattering: bool | None = schema_field("EnablePageShattering", since=(2, 5))
    DisableSpeculationControls: bool | None = schema_field(
        "DisableSpeculationControls", since=(2, 5)
    )
    # ProcessorFeatureSet{ProcessorFeatures, XsaveProcessorFeatures, ProcessorFeatureSetMode}
    # (2.5) is kept opaque: a sandbox has no use for it yet.
    ProcessorFeatureSet: Any = schema_field("ProcessorFeatureSet", since=(2, 5))
    CpuGroup: CpuGroup | None = schema_field("CpuGroup", since=(2, 5))
    SynchronizeHostFeatures: bool | None = schema_field(
        "SynchronizeHostFeatures", since=None, documented=False, source=WSB
    )
    EnableSchedulerAssist: bool | None = schema_field(
        "EnableSchedulerAssist", since=None, documented=False, source=WSB
    )
    DefaultVpCpuPriority: int | None = schema_field(
        "DefaultVpCpuPriority", since=None, documented=False, source=WSB
    )
    EnableProcessorIdling: bool | None = schema_field(
        "EnableProcessorIdling", since=None, documented=False, source=WSB
    )


@dataclass(kw_only=True)
class Topology(SchemaModel):
    """SchemaReference.md#Topology (``VirtualMachine.ComputeTopology``)."""

    SOURCE = "SchemaReference.md#Topology; hcsshim topology.go"

    Memory: VirtualMachineMemory | None = schema_field("Memory")
    Processor: VirtualMachineProcessor | None = schema_field("Processor")


# --------------------------------------------------------------------------------------
# Devices
# --------------------------------------------------------------------------------------


@dataclass(kw_only=True)
class Attachment(SchemaModel):
    """SchemaReference.md#Attachment: a disk on a SCSI controller (key = LUN as a string).

    The hcsshim-only flags are also used by Windows Sandbox's document.
    """

    SOURCE = "SchemaReference.md#Attachment; hcsshim attachment.go"

    Type: AttachmentType | str | None = schema_field("Type")
    Path: str | None = schema_field("Path")
    CachingMode: CachingMode | str | None = schema_field("CachingMode", since=(2, 1))
    ReadOnly: bool | None = schema_field("ReadOnly")
    SupportCompressedVolumes: bool | None = schema_field("SupportCompressedVolumes", since=(2, 3))
    AlwaysAllowSparseFiles: bool | None = schema_field("AlwaysAllowSparseFiles", since=(2, 6))
    SupportEncryptedFiles: bool | None = schema_field("SupportEncryptedFiles", since=(2, 6))
    IgnoreFlushes: bool | None = schema_field(
        "IgnoreFlushes", since=None, documented=False, source=_shim("attachment.go")
    )
    NoWriteHardening: bool | None = schema_field(
        "NoWriteHardening", since=None, documented=False, source=_shim("attachment.go")
    )
    DisableExpansionOptimization: bool | None = schema_field(
        "DisableExpansionOptimization",
        since=None,
        documented=False,
        source=_shim("attachment.go"),
    )
    IgnoreRelativeLocator: bool | None = schema_field(
        "IgnoreRelativeLocator", since=None, documented=False, source=_shim("attachment.go")
    )
    CaptureIoAttributionContext: bool | None = schema_field(
        "CaptureIoAttributionContext",
        since=None,
        documented=False,
        source=_shim("attachment.go"),
    )
    ExtensibleVirtualDiskType: str | None = schema_field(
        "ExtensibleVirtualDiskType",
        since=None,
        documented=False,
        source=_shim("attachment.go"),
    )


@dataclass(kw_only=True)
class Scsi(SchemaModel):
    """SchemaReference.md#Scsi: one controller; ``Attachments`` maps LUN ("0") → Attachment."""

    SOURCE = "SchemaReference.md#Scsi; hcsshim scsi.go"

    Attachments: dict[str, Attachment] | None = schema_field("Attachments")
    DisableInterruptBatching: bool | None = schema_field("DisableInterruptBatching", since=(2, 4))


@dataclass(kw_only=True)
class VirtualSmbShareOptions(SchemaModel):
    """SchemaReference.md#VirtualSmbShareOptions."""

    SOURCE = "SchemaReference.md#VirtualSmbShareOptions; hcsshim virtual_smb_share_options.go"

    ReadOnly: bool | None = schema_field("ReadOnly", since=(2, 1))
    ShareRead: bool | None = schema_field("ShareRead", since=(2, 1))
    CacheIo: bool | None = schema_field("CacheIo", since=(2, 1))
    NoOplocks: bool | None = schema_field("NoOplocks", since=(2, 1))
    TakeBackupPrivilege: bool | None = schema_field("TakeBackupPrivilege", since=(2, 1))
    UseShareRootIdentity: bool | None = schema_field("UseShareRootIdentity", since=(2, 1))
    NoDirectmap: bool | None = schema_field("NoDirectmap", since=(2, 1))
    NoLocks: bool | None = schema_field("NoLocks", since=(2, 1))
    NoDirnotify: bool | None = schema_field("NoDirnotify", since=(2, 1))
    VmSharedMemory: bool | None = schema_field("VmSharedMemory", since=(2, 1))
    RestrictFileAccess: bool | None = schema_field("RestrictFileAccess", since=(2, 1))
    ForceLevelIIOplocks: bool | None = schema_field("ForceLevelIIOplocks", since=(2, 1))
    ReparseBaseLayer: bool | None = schema_field("ReparseBaseLayer", since=(2, 1))
    PseudoOplocks: bool | None = schema_field("PseudoOplocks", since=(2, 1))
    NonCacheIo: bool | None = schema_field("NonCacheIo", since=(2, 1))
    PseudoDirnotify: bool | None = schema_field("PseudoDirnotify", since=(2, 1))
    SingleFileMapping: bool | None = schema_field("SingleFileMapping", since=(2, 1))
    SupportCloudFiles: bool | None = schema_field("SupportCloudFiles", since=(2, 3))
    FilterEncryptionAttributes: bool | None = schema_field(
        "FilterEncryptionAttributes", since=(2, 4)
    )


@dataclass(kw_only=True)
class VirtualSmbShare(SchemaModel):
    """SchemaReference.md#VirtualSmbShare: a host directory exposed over VMBus SMB."""

    SOURCE = "SchemaReference.md#VirtualSmbShare; hcsshim virtual_smb_share.go"

    Name: str | None = schema_field("Name")
    Path: str | None = schema_field("Path")
    AllowedFiles: list[str] | None = schema_field("AllowedFiles")
    Options: VirtualSmbShareOptions | None = schema_field("Options", since=(2, 1))


@dataclass(kw_only=True)
class VirtualSmb(SchemaModel):
    """SchemaReference.md#VirtualSmb."""

    SOURCE = "SchemaReference.md#VirtualSmb; hcsshim virtual_smb.go"

    Shares: list[VirtualSmbShare] | None = schema_field("Shares", since=(2, 1))
    DirectFileMappingInMB: int | None = schema_field("DirectFileMappingInMB", since=(2, 1))


@dataclass(kw_only=True)
class Plan9Share(SchemaModel):
    """SchemaReference.md#Plan9Share (Linux guests).  ``Flags`` is hcsshim's bitmask."""

    SOURCE = "SchemaReference.md#Plan9Share; hcsshim plan9_share.go"

    Name: str | None = schema_field("Name")
    AccessName: str | None = schema_field("AccessName", since=(2, 1))
    Path: str | None = schema_field("Path")
    Port: int | None = schema_field("Port")
    Flags: int | None = schema_field(
        "Flags", since=None, documented=False, source=_shim("plan9_share.go")
    )
    AllowedFiles: list[str] | None = schema_field("AllowedFiles", since=(2, 2))


@dataclass(kw_only=True)
class Plan9(SchemaModel):
    """SchemaReference.md#Plan9.  Never send an empty ``Shares`` list (vmwp crash on save,
    canonical/multipass); omit the device instead."""

    SOURCE = "SchemaReference.md#Plan9; hcsshim plan9.go"

    Shares: list[Plan9Share] | None = schema_field("Shares", since=(2, 1))


@dataclass(kw_only=True)
class IovSettings(SchemaModel):
    """SchemaReference.md#IovSettings (2.4)."""

    SOURCE = "SchemaReference.md#IovSettings; hcsshim iov_settings.go"

    OffloadWeight: int | None = schema_field("OffloadWeight", since=(2, 4))
    QueuePairsRequested: int | None = schema_field("QueuePairsRequested", since=(2, 4))
    InterruptModeration: str | None = schema_field("InterruptModeration", since=(2, 4))


@dataclass(kw_only=True)
class NetworkAdapter(SchemaModel):
    """SchemaReference.md#NetworkAdapter: a NIC bound to an HCN endpoint."""

    SOURCE = "SchemaReference.md#NetworkAdapter; hcsshim network_adapter.go"

    EndpointId: str | None = schema_field("EndpointId")
    MacAddress: str | None = schema_field("MacAddress")
    InstanceId: str | None = schema_field("InstanceId", since=(2, 4))
    DisableInterruptBatching: bool | None = schema_field("DisableInterruptBatching", since=(2, 4))
    IovSettings: IovSettings | None = schema_field("IovSettings", since=(2, 4))
    ConnectionState: StateOverride | str | None = schema_field("ConnectionState", since=(2, 4))


@dataclass(kw_only=True)
class RdpConnectionOptions(SchemaModel):
    """SchemaReference.md#RdpConnectionOptions (2.1)."""

    SOURCE = "SchemaReference.md#RdpConnectionOptions; hcsshim rdp_connection_options.go"

    AccessSids: list[str] | None = schema_field("AccessSids", since=(2, 1))
    NamedPipe: str | None = schema_field("NamedPipe", since=(2, 1))


@dataclass(kw_only=True)
class VideoMonitor(SchemaModel):
    """SchemaReference.md#VideoMonitor."""

    SOURCE = "SchemaReference.md#VideoMonitor; hcsshim video_monitor.go"

    HorizontalResolution: int | None = schema_field("HorizontalResolution", since=(2, 1))
    VerticalResolution: int | None = schema_field("VerticalResolution", since=(2, 1))
    ConnectionOptions: RdpConnectionOptions | None = schema_field("ConnectionOptions", since=(2, 1))


@dataclass(kw_only=True)
class EnhancedModeVideo(SchemaModel):
    """SchemaReference.md#EnhancedModeVideo (RDP over a named pipe)."""

    SOURCE = "SchemaReference.md#EnhancedModeVideo; hcsshim enhanced_mode_video.go"

    ConnectionOptions: RdpConnectionOptions | None = schema_field("ConnectionOptions", since=(2, 1))


@dataclass(kw_only=True)
class Keyboard(SchemaModel):
    """SchemaReference.md#Keyboard: an empty object ``{}``."""

    SOURCE = "SchemaReference.md#Keyboard"


@dataclass(kw_only=True)
class Mouse(SchemaModel):
    """SchemaReference.md#Mouse: an empty object ``{}``."""

    SOURCE = "SchemaReference.md#Mouse"


@dataclass(kw_only=True)
class Battery(SchemaModel):
    """SchemaReference.md#Battery: an empty object ``{}``."""

    SOURCE = "SchemaReference.md#Battery"


@dataclass(kw_only=True)
class HvSocketServiceConfig(SchemaModel):
    """SchemaReference.md#HvSocketServiceConfig.  ``Disabled`` is hcsshim-only."""

    SOURCE = "SchemaReference.md#HvSocketServiceConfig; hcsshim hv_socket_service_config.go"

    BindSecurityDescriptor: str | None = schema_field("BindSecurityDescriptor")
    ConnectSecurityDescriptor: str | None = schema_field("ConnectSecurityDescriptor")
    AllowWildcardBinds: bool | None = schema_field("AllowWildcardBinds")
    Disabled: bool | None = schema_field(
        "Disabled", since=None, documented=False, source=_shim("hv_socket_service_config.go")
    )


@dataclass(kw_only=True)
class HvSocketSystemConfig(SchemaModel):
    """SchemaReference.md#HvSocketSystemConfig; ``ServiceTable`` maps service GUID → config."""

    SOURCE = "SchemaReference.md#HvSocketSystemConfig; hcsshim hv_socket_system_config.go"

    DefaultBindSecurityDescriptor: str | None = schema_field("DefaultBindSecurityDescriptor")
    DefaultConnectSecurityDescriptor: str | None = schema_field("DefaultConnectSecurityDescriptor")
    ServiceTable: dict[str, HvSocketServiceConfig] | None = schema_field("ServiceTable")


@dataclass(kw_only=True)
class VirtualMachineHvSocket(SchemaModel):
    """SchemaReference.md#VirtualMachine_HvSocket (hcsshim calls it ``HvSocket2``)."""

    SCHEMA_NAME = "VirtualMachine_HvSocket"
    SOURCE = "SchemaReference.md#VirtualMachine_HvSocket; hcsshim hv_socket_2.go"

    HvSocketConfig: HvSocketSystemConfig | None = schema_field("HvSocketConfig", since=(2, 1))


HvSocket2 = VirtualMachineHvSocket


@dataclass(kw_only=True)
class ComPort(SchemaModel):
    """SchemaReference.md#ComPort: ``NamedPipe`` "" = disconnected."""

    SOURCE = "SchemaReference.md#ComPort; hcsshim com_port.go"

    NamedPipe: str | None = schema_field("NamedPipe", since=(2, 1))
    OptimizeForDebugger: bool | None = schema_field("OptimizeForDebugger", since=(2, 1))


@dataclass(kw_only=True)
class WindowsCrashReporting(SchemaModel):
    """SchemaReference.md#WindowsCrashReporting.  ``DumpType`` is hcsshim/Windows Sandbox."""

    SOURCE = "SchemaReference.md#WindowsCrashReporting; hcsshim windows_crash_reporting.go"

    DumpFileName: str | None = schema_field("DumpFileName")
    MaxDumpSize: int | None = schema_field("MaxDumpSize")
    DumpType: str | None = schema_field(
        "DumpType",
        since=None,
        documented=False,
        source=_shim("windows_crash_reporting.go") + "; " + WSB,
    )


@dataclass(kw_only=True)
class GuestCrashReporting(SchemaModel):
    """SchemaReference.md#GuestCrashReporting."""

    SOURCE = "SchemaReference.md#GuestCrashReporting; hcsshim guest_crash_reporting.go"

    WindowsCrashSettings: WindowsCrashReporting | None = schema_field("WindowsCrashSettings")


@dataclass(kw_only=True)
class VirtualPciFunction(SchemaModel):
    """SchemaReference.md#VirtualPciFunction (2.3)."""

    SOURCE = "SchemaReference.md#VirtualPciFunction; hcsshim virtual_pci_function.go"

    DeviceInstancePath: str | None = schema_field("DeviceInstancePath", since=(2, 3))
    VirtualFunction: int | None = schema_field("VirtualFunction", since=(2, 3))
    AllowDirectTranslatedP2P: bool | None = schema_field("AllowDirectTranslatedP2P", since=(2, 4))


@dataclass(kw_only=True)
class VirtualPciDevice(SchemaModel):
    """SchemaReference.md#VirtualPciDevice (2.3; device assignment)."""

    SOURCE = "SchemaReference.md#VirtualPciDevice; hcsshim virtual_pci_device.go"

    Functions: list[VirtualPciFunction] | None = schema_field("Functions", since=(2, 3))


@dataclass(kw_only=True)
class Licensing(SchemaModel):
    """Not in SchemaReference.md: seen only in Windows Sandbox's document."""

    SOURCE = WSB

    ContainerID: str | None = schema_field("ContainerID", since=None, documented=False, source=WSB)
    PackageFamilyNames: list[str] | None = schema_field(
        "PackageFamilyNames", since=None, documented=False, source=WSB
    )


@dataclass(kw_only=True)
class KernelIntegration(SchemaModel):
    """Not in SchemaReference.md: an empty object in Windows Sandbox's document."""

    SOURCE = WSB


@dataclass(kw_only=True)
class Devices(SchemaModel):
    """SchemaReference.md#Devices.  Map keys are strings (COM port "0", controller names).

    Not modelled yet (TODO): VirtioSerial (2.2), VirtualPMem, FlexibleIov, SharedMemory.
    """

    SOURCE = "SchemaReference.md#Devices; hcsshim devices.go"

    ComPorts: dict[str, ComPort] | None = schema_field("ComPorts", since=(2, 1))
    Scsi: dict[str, Scsi] | None = schema_field("Scsi")
    NetworkAdapters: dict[str, NetworkAdapter] | None = schema_field("NetworkAdapters")
    VideoMonitor: VideoMonitor | None = schema_field("VideoMonitor")
    Keyboard: Keyboard | None = schema_field("Keyboard")
    Mouse: Mouse | None = schema_field("Mouse")
    HvSocket: VirtualMachineHvSocket | None = schema_field("HvSocket", since=(2, 1))
    EnhancedModeVideo: EnhancedModeVideo | None = schema_field("EnhancedModeVideo", since=(2, 1))
    GuestCrashReporting: GuestCrashReporting | None = schema_field("GuestCrashReporting")
    VirtualSmb: VirtualSmb | None = schema_field("VirtualSmb")
    Plan9: Plan9 | None = schema_field("Plan9")
    Battery: Battery | None = schema_field("Battery")
    VirtualPci: dict[str, VirtualPciDevice] | None = schema_field("VirtualPci", since=(2, 3))
    Licensing: Licensing | None = schema_field(
        "Licensing", since=None, documented=False, source=WSB
    )
    KernelIntegration: KernelIntegration | None = schema_field(
        "KernelIntegration", since=None, documented=False, source=WSB
    )


# --------------------------------------------------------------------------------------
# State, connection, registry, services
# --------------------------------------------------------------------------------------


@dataclass(kw_only=True)
class GuestState(SchemaModel):
    """SchemaReference.md#GuestState (2.1): ``""`` = transient, in-memory state."""

    SOURCE = "SchemaReference.md#GuestState; hcsshim guest_state.go"

    GuestStateFilePath: str | None = schema_field("GuestStateFilePath", since=(2, 1))
    GuestStateFileType: str | None = schema_field(
        "GuestStateFileType", since=None, documented=False, source=_shim("guest_state.go")
    )
    RuntimeStateFilePath: str | None = schema_field("RuntimeStateFilePath", since=(2, 1))
    ForceTransientState: bool | None = schema_field("ForceTransientState", since=(2, 1))


@dataclass(kw_only=True)
class RestoreState(SchemaModel):
    """SchemaReference.md#RestoreState: restore a saved file or clone a template system."""

    SOURCE = "SchemaReference.md#RestoreState; hcsshim restore_state.go"

    SaveStateFilePath: str | None = schema_field("SaveStateFilePath")
    TemplateSystemId: str | None = schema_field("TemplateSystemId", since=(2, 1))


@dataclass(kw_only=True)
class GuestConnection(SchemaModel):
    """SchemaReference.md#GuestConnection: present (even ``{}``) ⇒ Start waits for the GCS."""

    SOURCE = "SchemaReference.md#GuestConnection; hcsshim guest_connection.go"

    UseVsock: bool | None = schema_field("UseVsock", since=(2, 1))
    UseConnectedSuspend: bool | None = schema_field("UseConnectedSuspend", since=(2, 1))
    UseHostTimeZone: bool | None = schema_field("UseHostTimeZone", since=(2, 4))


@dataclass(kw_only=True)
class RegistryKey(SchemaModel):
    """SchemaReference.md#RegistryKey."""

    SOURCE = "SchemaReference.md#RegistryKey; hcsshim registry_key.go"

    Hive: RegistryHive | str | None = schema_field("Hive")
    Name: str | None = schema_field("Name")
    Volatile: bool | None = schema_field("Volatile")


@dataclass(kw_only=True)
class RegistryValue(SchemaModel):
    """SchemaReference.md#RegistryValue: exactly one ``*Value`` must be set.

    ``BinaryValue`` is a ByteArray: a base64 string in JSON (SchemaReference.md "JSON type").
    """

    SOURCE = "SchemaReference.md#RegistryValue; hcsshim registry_value.go"

    Key: RegistryKey | None = schema_field("Key")
    Name: str | None = schema_field("Name")
    Type: RegistryValueType | str | None = schema_field("Type")
    StringValue: str | None = schema_field("StringValue")
    BinaryValue: str | None = schema_field("BinaryValue")
    DWordValue: int | None = schema_field("DWordValue")
    QWordValue: int | None = schema_field("QWordValue")
    CustomType: int | None = schema_field("CustomType")


@dataclass(kw_only=True)
class RegistryChanges(SchemaModel):
    """SchemaReference.md#RegistryChanges: applied to a Windows guest's registry at boot."""

    SOURCE = "SchemaReference.md#RegistryChanges; hcsshim registry_changes.go"

    AddValues: list[RegistryValue] | None = schema_field("AddValues")
    DeleteKeys: list[RegistryKey] | None = schema_field("DeleteKeys")


@dataclass(kw_only=True)
class StorageQoS(SchemaModel):
    """SchemaReference.md#StorageQoS."""

    SOURCE = "SchemaReference.md#StorageQoS; hcsshim storage_qo_s.go"

    IopsMaximum: int | None = schema_field("IopsMaximum")
    BandwidthMaximum: int | None = schema_field("BandwidthMaximum")


@dataclass(kw_only=True)
class Heartbeat(SchemaModel):
    """SchemaReference.md#Heartbeat: ``{}`` (integration service)."""

    SOURCE = "SchemaReference.md#Heartbeat"


@dataclass(kw_only=True)
class Shutdown(SchemaModel):
    """SchemaReference.md#Shutdown: ``{}`` (integration service)."""

    SOURCE = "SchemaReference.md#Shutdown"


@dataclass(kw_only=True)
class Timesync(SchemaModel):
    """SchemaReference.md#Timesync: ``{}`` (integration service)."""

    SOURCE = "SchemaReference.md#Timesync"


@dataclass(kw_only=True)
class KvpExchange(SchemaModel):
    """SchemaReference.md#KvpExchange (2.5)."""

    SOURCE = "SchemaReference.md#KvpExchange; hcsshim kvp_exchange.go"

    EnableHostOSInfoKvpItems: StateOverride | str | None = schema_field(
        "EnableHostOSInfoKvpItems", since=(2, 5)
    )
    EntriesToBeAdded: dict[str, str] | None = schema_field("EntriesToBeAdded", since=(2, 5))
    EntriesToBeRemoved: list[str] | None = schema_field("EntriesToBeRemoved", since=(2, 5))


@dataclass(kw_only=True)
class Services(SchemaModel):
    """SchemaReference.md#Services (2.5): guest integration services."""

    SOURCE = "SchemaReference.md#Services; hcsshim services.go"

    Heartbeat: Heartbeat | None = schema_field("Heartbeat", since=(2, 5))
    Shutdown: Shutdown | None = schema_field("Shutdown", since=(2, 5))
    Timesync: Timesync | None = schema_field("Timesync", since=(2, 5))
    KvpExchange: KvpExchange | None = schema_field("KvpExchange", since=(2, 5))


@dataclass(kw_only=True)
class DebugOptions(SchemaModel):
    """hcsshim-only ``DebugOptions`` (not in SchemaReference.md)."""

    SOURCE = _shim("debug_options.go")

    BugcheckSavedStateFileName: str | None = schema_field(
        "BugcheckSavedStateFileName", since=None, documented=False, source=SOURCE
    )
    BugcheckNoCrashdumpSavedStateFileName: str | None = schema_field(
        "BugcheckNoCrashdumpSavedStateFileName", since=None, documented=False, source=SOURCE
    )
    TripleFaultSavedStateFileName: str | None = schema_field(
        "TripleFaultSavedStateFileName", since=None, documented=False, source=SOURCE
    )
    FirmwareDumpFileName: str | None = schema_field(
        "FirmwareDumpFileName", since=None, documented=False, source=SOURCE
    )


@dataclass(kw_only=True)
class RunInSilo(SchemaModel):
    """Not in SchemaReference.md: Windows Sandbox's ``VirtualMachine.RunInSilo``."""

    SOURCE = WSB

    SiloBaseOsPath: str | None = schema_field(
        "SiloBaseOsPath", since=None, documented=False, source=WSB
    )
    NotifySiloJobCreated: bool | None = schema_field(
        "NotifySiloJobCreated", since=None, documented=False, source=WSB
    )


@dataclass(kw_only=True)
class LaunchOptions(SchemaModel):
    """Not in SchemaReference.md: Windows Sandbox's ``VirtualMachine.LaunchOptions``."""

    SOURCE = WSB

    Type: str | None = schema_field("Type", since=None, documented=False, source=WSB)


# --------------------------------------------------------------------------------------
# VirtualMachine / ComputeSystem
# --------------------------------------------------------------------------------------


@dataclass(kw_only=True)
class VirtualMachine(SchemaModel):
    """SchemaReference.md#VirtualMachine.

    hcsshim also has SecuritySettings, MigrationOptions, ResourcePartitionId: not modelled
    yet (TODO) — a sandbox does not need them.
    """

    SOURCE = "SchemaReference.md#VirtualMachine; hcsshim virtual_machine.go"

    Version: Version | None = schema_field("Version", since=(2, 5))
    StopOnReset: bool | None = schema_field("StopOnReset")
    Chipset: Chipset | None = schema_field("Chipset")
    ComputeTopology: Topology | None = schema_field("ComputeTopology")
    Devices: Devices | None = schema_field("Devices")
    Services: Services | None = schema_field("Services", since=(2, 5))
    GuestState: GuestState | None = schema_field("GuestState", since=(2, 1))
    RestoreState: RestoreState | None = schema_field("RestoreState")
    RegistryChanges: RegistryChanges | None = schema_field("RegistryChanges")
    StorageQoS: StorageQoS | None = schema_field("StorageQoS", since=(2, 1))
    GuestConnection: GuestConnection | None = schema_field("GuestConnection", since=(2, 1))
    DebugOptions: DebugOptions | None = schema_field(
        "DebugOptions", since=None, documented=False, source=_shim("virtual_machine.go")
    )
    RunInSilo: RunInSilo | None = schema_field(
        "RunInSilo", since=None, documented=False, source=WSB
    )
    LaunchOptions: LaunchOptions | None = schema_field(
        "LaunchOptions", since=None, documented=False, source=WSB
    )


@dataclass(kw_only=True)
class ComputeSystem(SchemaModel):
    """SchemaReference.md#ComputeSystem: the document for ``HcsCreateComputeSystem``.

    ``Container`` and ``HostedSystem`` are kept opaque (``Any``): hcs-sandbox only
    creates virtual machines.
    """

    SOURCE = "SchemaReference.md#ComputeSystem; hcsshim compute_system.go"

    Owner: str | None = schema_field("Owner")
    SchemaVersion: Version | None = schema_field("SchemaVersion")
    HostingSystemId: str | None = schema_field("HostingSystemId")
    HostedSystem: Any = schema_field("HostedSystem")
    Container: Any = schema_field("Container")
    VirtualMachine: VirtualMachine | None = schema_field("VirtualMachine")
    ShouldTerminateOnLastHandleClosed: bool | None = schema_field(
        "ShouldTerminateOnLastHandleClosed"
    )
