"""String enums of the HCS and HCN schemas, and the HCN integer flag sets.

Every member's value is the exact JSON string.  The enums subclass ``str`` (or ``int``
for flags), so a member can be used wherever the JSON value is expected.  Model fields
are typed ``SomeEnum | str`` so that a value a newer host sends is kept, not rejected.

Sources (``NewInVersion`` noted where it is not 2.0/2.1):
- HCS: MicrosoftDocs/Virtualization-Documentation ``virtualization/api/hcs/SchemaReference.md``
  (2021 revision), section "Enums";
- hcsshim ``internal/hcs/schema2/*.go`` for values the reference does not list;
- HCN: ``virtualization/api/hcn/HNS_Schema.md`` and hcsshim ``hcn/hcnnetwork.go``,
  ``hcn/hcnendpoint.go``, ``hcn/hcnpolicy.go``.
"""

from __future__ import annotations

import enum

__all__ = [
    "AclAction",
    "AclDirection",
    "AclRuleType",
    "ApplySecureBootTemplateType",
    "AttachmentType",
    "CacheMode",
    "CachingMode",
    "CrashType",
    "EndpointFlags",
    "EndpointPolicyType",
    "GetPropertyType",
    "HostComputeQueryFlags",
    "IpamType",
    "MemoryBackingPageSize",
    "MemoryBackingType",
    "ModifyOperation",
    "ModifyRequestType",
    "NetworkFlags",
    "NetworkPolicyType",
    "NetworkType",
    "NotificationType",
    "OsLayerType",
    "OsType",
    "PathType",
    "PauseReason",
    "PauseSuspensionLevel",
    "ProcessSignal",
    "RegistryHive",
    "RegistryValueType",
    "SaveType",
    "SerialConsole",
    "ShutdownMechanism",
    "ShutdownType",
    "State",
    "StateOverride",
    "StdHandle",
    "SystemPropertyType",
    "SystemType",
    "UefiBootDevice",
]


class _StrEnum(str, enum.Enum):
    """A str enum whose ``str()`` is its JSON value (3.10 has no ``enum.StrEnum``)."""

    def __str__(self) -> str:
        return str(self.value)


# ---------------------------------------------------------------- HCS (SchemaReference.md)


class AttachmentType(_StrEnum):
    """SchemaReference.md ``AttachmentType``."""

    VIRTUAL_DISK = "VirtualDisk"
    ISO = "Iso"
    PASS_THRU = "PassThru"


class CachingMode(_StrEnum):
    """SchemaReference.md ``CachingMode`` (2.1)."""

    UNCACHED = "Uncached"
    CACHED = "Cached"
    READ_ONLY_CACHED = "ReadOnlyCached"


class CacheMode(_StrEnum):
    """SchemaReference.md ``CacheMode`` (Layer.Cache)."""

    UNSPECIFIED = "Unspecified"
    DISABLED = "Disabled"
    ENABLED = "Enabled"
    PRIVATE = "Private"
    PRIVATE_ALLOW_SHARING = "PrivateAllowSharing"


class PathType(_StrEnum):
    """SchemaReference.md ``PathType`` (2.1)."""

    ABSOLUTE_PATH = "AbsolutePath"
    VIRTUAL_SMB_SHARE_NAME = "VirtualSmbShareName"


class UefiBootDevice(_StrEnum):
    """SchemaReference.md ``UefiBootDevice`` (``File`` is 2.1)."""

    SCSI_DRIVE = "ScsiDrive"
    VMB_FS = "VmbFs"
    NETWORK = "Network"
    FILE = "File"


class SerialConsole(_StrEnum):
    """SchemaReference.md ``SerialConsole`` (Uefi.Console)."""

    DEFAULT = "Default"
    DISABLED = "Disabled"
    COM_PORT1 = "ComPort1"
    COM_PORT2 = "ComPort2"


class ApplySecureBootTemplateType(_StrEnum):
    """SchemaReference.md ``ApplySecureBootTemplateType`` (2.3)."""

    SKIP = "Skip"
    APPLY = "Apply"


class MemoryBackingPageSize(_StrEnum):
    """SchemaReference.md ``MemoryBackingPageSize`` (2.2)."""

    SMALL = "Small"
    LARGE = "Large"


class MemoryBackingType(_StrEnum):
    """``VirtualMachine_Memory.Backing``: not in SchemaReference.md.

    Source: hcsshim ``internal/hcs/schema2/memory_backing_type.go`` (Physical, Virtual,
    Hybrid); Microsoft's Tutorial.md sample and Windows Sandbox's dump use "Virtual".
    """

    PHYSICAL = "Physical"
    VIRTUAL = "Virtual"
    HYBRID = "Hybrid"


class StateOverride(_StrEnum):
    """SchemaReference.md ``StateOverride`` (2.4)."""

    DEFAULT = "Default"
    DISABLED = "Disabled"
    ENABLED = "Enabled"


class RegistryHive(_StrEnum):
    """SchemaReference.md ``RegistryHive``."""

    SYSTEM = "System"
    SOFTWARE = "Software"
    SECURITY = "Security"
    SAM = "Sam"


class RegistryValueType(_StrEnum):
    """SchemaReference.md ``RegistryValueType``."""

    NONE = "None"
    STRING = "String"
    EXPANDED_STRING = "ExpandedString"
    MULTI_STRING = "MultiString"
    BINARY = "Binary"
    DWORD = "DWord"
    QWORD = "QWord"
    CUSTOM_TYPE = "CustomType"


class SaveType(_StrEnum):
    """SchemaReference.md ``SaveType`` (2.1)."""

    TO_FILE = "ToFile"
    AS_TEMPLATE = "AsTemplate"


class PauseSuspensionLevel(_StrEnum):
    """SchemaReference.md ``PauseSuspensionLevel``."""

    SUSPEND = "Suspend"
    MEMORY_LOW = "MemoryLow"
    MEMORY_MEDIUM = "MemoryMedium"
    MEMORY_HIGH = "MemoryHigh"


class PauseReason(_StrEnum):
    """SchemaReference.md ``PauseReason`` (2.1)."""

    NONE = "None"
    SAVE = "Save"
    TEMPLATE = "Template"


class ShutdownMechanism(_StrEnum):
    """SchemaReference.md ``ShutdownMechanism`` (2.5)."""

    GUEST_CONNECTION = "GuestConnection"
    INTEGRATION_SERVICE = "IntegrationService"


class ShutdownType(_StrEnum):
    """SchemaReference.md ``ShutdownType`` (2.5)."""

    SHUTDOWN = "Shutdown"
    HIBERNATE = "Hibernate"
    REBOOT = "Reboot"


class CrashType(_StrEnum):
    """SchemaReference.md ``CrashType`` (2.3)."""

    CRASH_GUEST = "CrashGuest"


class ProcessSignal(_StrEnum):
    """SchemaReference.md ``ProcessSignal`` (2.1)."""

    CTRL_C = "CtrlC"
    CTRL_BREAK = "CtrlBreak"
    CTRL_CLOSE = "CtrlClose"
    CTRL_LOG_OFF = "CtrlLogOff"
    CTRL_SHUTDOWN = "CtrlShutdown"


class ModifyOperation(_StrEnum):
    """SchemaReference.md ``ModifyOperation`` (ProcessModifyRequest.Operation)."""

    CONSOLE_SIZE = "ConsoleSize"
    CLOSE_HANDLE = "CloseHandle"


class StdHandle(_StrEnum):
    """SchemaReference.md ``StdHandle`` (``All`` is 2.1)."""

    STD_IN = "StdIn"
    STD_OUT = "StdOut"
    STD_ERR = "StdErr"
    ALL = "All"


class ModifyRequestType(_StrEnum):
    """SchemaReference.md ``ModifyRequestType``."""

    ADD = "Add"
    REMOVE = "Remove"
    UPDATE = "Update"


class SystemPropertyType(_StrEnum):
    """SchemaReference.md ``System_PropertyType`` (2.1)."""

    MEMORY = "Memory"
    STATISTICS = "Statistics"
    PROCESS_LIST = "ProcessList"
    TERMINATE_ON_LAST_HANDLE_CLOSED = "TerminateOnLastHandleClosed"
    SHARED_MEMORY_REGION = "SharedMemoryRegion"
    GUEST_CONNECTION = "GuestConnection"


class GetPropertyType(_StrEnum):
    """SchemaReference.md ``GetPropertyType`` (service properties, 2.1)."""

    BASIC = "Basic"
    CPU_GROUP = "CpuGroup"
    PROCESSOR_TOPOLOGY = "ProcessorTopology"
    CONTAINER_CREDENTIAL_GUARD = "ContainerCredentialGuard"
    QOS_CAPABILITIES = "QoSCapabilities"


class SystemType(_StrEnum):
    """SchemaReference.md ``SystemType`` (2.1)."""

    CONTAINER = "Container"
    VIRTUAL_MACHINE = "VirtualMachine"


class OsType(_StrEnum):
    """SchemaReference.md ``OsType`` (2.1)."""

    UNKNOWN = "Unknown"
    WINDOWS = "Windows"
    LINUX = "Linux"


class State(_StrEnum):
    """SchemaReference.md ``State`` (2.1): compute system state exposed to clients."""

    CREATED = "Created"
    RUNNING = "Running"
    PAUSED = "Paused"
    STOPPED = "Stopped"
    SAVED_AS_TEMPLATE = "SavedAsTemplate"
    UNKNOWN = "Unknown"


class NotificationType(_StrEnum):
    """SchemaReference.md ``NotificationType`` (2.1): exit type of a compute system."""

    NONE = "None"
    GRACEFUL_EXIT = "GracefulExit"
    FORCED_EXIT = "ForcedExit"
    UNEXPECTED_EXIT = "UnexpectedExit"
    UNKNOWN = "Unknown"


class OsLayerType(_StrEnum):
    """SchemaReference.md ``OsLayerType`` (2.1)."""

    CONTAINER = "Container"
    VM = "Vm"


# ---------------------------------------------------------------- HCN (HNS_Schema.md)


class NetworkType(_StrEnum):
    """HNS_Schema.md ``NetworkMode`` (HostComputeNetwork.Type; hcsshim ``NetworkType``)."""

    NAT = "NAT"
    ICS = "ICS"
    TRANSPARENT = "Transparent"
    L2_BRIDGE = "L2Bridge"
    L2_TUNNEL = "L2Tunnel"
    OVERLAY = "Overlay"
    PRIVATE = "Private"
    INTERNAL = "Internal"
    MIRRORED = "Mirrored"  # HCN 2.4
    INFINIBAND = "Infiniband"  # HCN 2.4
    CONSTRAINED_ICS = "ConstrainedICS"  # HCN 2.10


class IpamType(_StrEnum):
    """HNS_Schema.md ``IpamType``."""

    STATIC = "Static"
    DHCP = "Dhcp"


class EndpointPolicyType(_StrEnum):
    """HNS_Schema.md ``EndpointPolicyType``; hcsshim ``hcn/hcnpolicy.go``."""

    PORT_MAPPING = "PortMapping"
    ACL = "ACL"
    QOS = "QOS"
    L2_DRIVER = "L2Driver"
    OUTBOUND_NAT = "OutBoundNAT"
    SDN_ROUTE = "SDNRoute"
    L4_PROXY = "L4Proxy"
    L4_WFP_PROXY = "L4WFPPROXY"  # HCN 2.5
    PROVIDER_ADDRESS = "ProviderAddress"
    PORT_NAME = "PortName"
    ENCAP_OVERHEAD = "EncapOverhead"
    INTERFACE_CONSTRAINT = "InterfaceConstraint"
    ENCRYPTION = "Encryption"  # HCN 2.1
    VLAN = "VLAN"  # HCN 2.4
    INTERFACE_PARAMETERS = "InterfaceParameters"  # HCN 2.4
    IOV = "Iov"  # HCN 2.9
    TIER_ACL = "TierAcl"  # HCN 2.10


class NetworkPolicyType(_StrEnum):
    """HNS_Schema.md ``NetworkPolicyType``."""

    SOURCE_MAC_ADDRESS = "SourceMacAddress"
    NET_ADAPTER_NAME = "NetAdapterName"
    INTERFACE_CONSTRAINT = "InterfaceConstraint"
    VSWITCH_EXTENSION = "VSwitchExtension"
    PROVIDER_ADDRESS = "ProviderAddress"
    DR_MAC_ADDRESS = "DrMacAddress"
    AUTOMATIC_DNS = "AutomaticDNS"
    REMOTE_SUBNET_ROUTE = "RemoteSubnetRoute"
    VXLAN_PORT = "VxlanPort"
    HOST_ROUTE = "HostRoute"
    SET_POLICY = "SetPolicy"
    L4_PROXY = "L4Proxy"
    LAYER_CONSTRAINT = "LayerConstraint"
    NETWORK_ACL = "NetworkACL"


class AclAction(_StrEnum):
    """HNS_Schema.md ``ActionType`` (``Pass`` is HCN 2.10)."""

    ALLOW = "Allow"
    BLOCK = "Block"
    PASS = "Pass"


class AclDirection(_StrEnum):
    """HNS_Schema.md ``DirectionType``."""

    IN = "In"
    OUT = "Out"


class AclRuleType(_StrEnum):
    """HNS_Schema.md ``RuleType``: Host = WFP rules, Switch = VFP rules."""

    HOST = "Host"
    SWITCH = "Switch"


class NetworkFlags(enum.IntFlag):
    """``HostComputeNetwork.Flags`` bits (the JSON carries an integer bitmask).

    HNS_Schema.md lists the names only.  Values: hcsshim ``hcn/hcnnetwork.go``
    (EnableNonPersistent = 8, DisableHostPort = 1024, EnableIov = 8192) and canonical/
    multipass ``hcn`` wrapper for the rest.  Microsoft's "HCN JSON document schemas" page
    gives IsolateVSwitch = 8, which conflicts: see docs/windows-notes.md#schema.
    """

    NONE = 0
    ENABLE_DNS_PROXY = 1
    ENABLE_DHCP_SERVER = 2
    ENABLE_MIRRORING = 4
    ENABLE_NON_PERSISTENT = 8
    ISOLATE_VSWITCH = 16
    ENABLE_FLOW_STEERING = 32
    DISABLE_SHARING = 64
    ENABLE_FIREWALL = 128
    DISABLE_HOST_PORT = 1024
    ENABLE_IOV = 8192


class EndpointFlags(enum.IntFlag):
    """``HostComputeEndpoint.Flags`` bits; hcsshim ``hcn/hcnendpoint.go`` (RemoteEndpoint = 1)."""

    NONE = 0
    REMOTE_ENDPOINT = 1


class HostComputeQueryFlags(enum.IntEnum):
    """``HostComputeQuery.Flags``; hcsshim ``hcn/hcn.go`` (None = 0, Detailed = 1)."""

    NONE = 0
    DETAILED = 1
