"""The planner: a pure function from a :class:`SandboxSpec` plus :class:`HostFacts` to every
document and file needed to create one sandbox (:class:`Plan`).

``plan(spec, facts)`` does no I/O, reads no clock and draws no random numbers: every id and
path comes in through :class:`HostFacts`, so the same inputs always give the same plan
(golden tests compare it byte for byte).  ``HostFacts.for_planning()`` gives deterministic
placeholder facts for ``hcs-sandbox plan`` on any OS.

Each base kind follows a known, published design (docs/planner.md has the whole story):

``host``
    Modelled on the document Windows Sandbox itself passes to ``HcsCreateComputeSystem``
    (MouriNaruto/MouriDocs ``docs/4/ReadMe.md``):
    UEFI boot over ``VmbFs`` from the read-only vSMB share ``os`` = the host's Windows Sandbox
    ``BaseLayer\\Files``.  Two variants: ``documented`` (default: only fields of Microsoft's
    public schema, SchemaReference.md) and ``wsb-compat`` (experimental: the dumped document
    with its undocumented fields — RunInSilo, SharedMemoryMB, Licensing, ...).
``image``
    hcsshim's Windows utility VM (``internal/uvm/create_wcow.go``): VmbFs boot
    from ``UtilityVM\\Files``; the scratch disk is a copy of ``UtilityVM\\SystemTemplate.vhdx``
    (``internal/wcow/scratch.go`` ``CreateUVMScratch``).
``vhdx``
    Microsoft's tutorial VM (``virtualization/api/hcs/Reference/Tutorial.md``): UEFI boot
    from the disk on SCSI controller ``Primary disk``, through a differencing
    disk whose parent is the user's VHDX, so the original is never written.

Network adapters: the planner names the endpoint but not its MAC.  HNS assigns the MAC
from the NAT network's ``MacPool`` when the endpoint is created without one (what hcsshim
does: ``hcn/hcnendpoint.go``, ``internal/uvm/network.go``), and the sandbox layer copies it
into the adapter with :meth:`Plan.with_adapter_mac` before ``HcsCreateComputeSystem``.

Security defaults in every document: no network adapter unless a network is asked for; no
display devices when headless; mapped folders read-only unless asked; HvSocket default
bind/connect descriptors limited to SYSTEM (Windows Sandbox's own, §1.3) or SYSTEM +
Administrators (hcsshim's); no crash dumps; ``GuestConnection`` present (``HcsCreateProcess``
needs the HCS-internal guest connection: hcsshim issue #1327); ``Owner`` ``hcs-sandbox``.
"""

from __future__ import annotations

import dataclasses
import json as _json
import json.scanner as _json_scanner
import ntpath
import operator
import posixpath
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from json.encoder import encode_basestring_ascii as _encode_json_string
from typing import Any, Literal, get_args

from hcs_sandbox.errors import SpecError
from hcs_sandbox.sandbox import hostpath
from hcs_sandbox.sandbox.owned import ID_NAMESPACE, OWNER
from hcs_sandbox.sandbox.owned import uuid5_bytes as _uuid5_bytes
from hcs_sandbox.sandbox.spec import MappedFolder, SandboxSpec
from hcs_sandbox.schema import (
    SCHEMA_VERSION_MAP,
    AclPolicySetting,
    Attachment,
    Battery,
    Chipset,
    ComputeSystem,
    Devices,
    EndpointPolicy,
    EnhancedModeVideo,
    GuestConnection,
    GuestState,
    HostComputeEndpoint,
    HostComputeNetwork,
    HvSocketServiceConfig,
    HvSocketSystemConfig,
    Ipam,
    KernelIntegration,
    Keyboard,
    LaunchOptions,
    Licensing,
    MacPool,
    MacRange,
    Mouse,
    NetworkAdapter,
    RdpConnectionOptions,
    Route,
    RunInSilo,
    Scsi,
    Subnet,
    Topology,
    Uefi,
    UefiBootEntry,
    Version,
    VersionTuple,
    VideoMonitor,
    VirtualMachine,
    VirtualMachineHvSocket,
    VirtualMachineMemory,
    VirtualMachineProcessor,
    VirtualSmb,
    VirtualSmbShare,
    VirtualSmbShareOptions,
    fields_newer_than,
    required_schema_version,
    undocumented_fields,
)
from hcs_sandbox.schema.enums import (
    AclAction,
    AclDirection,
    AclRuleType,
    AttachmentType,
    CachingMode,
    IpamType,
    MemoryBackingPageSize,
    MemoryBackingType,
    NetworkFlags,
    NetworkType,
    UefiBootDevice,
)
from hcs_sandbox.schema.network import HCN_DEFAULT_SCHEMA, PROTOCOL_TCP, PROTOCOL_UDP

__all__ = [
    "DEFAULT_SCRATCH_BYTES",
    "GPU_RESOURCE_PATH",
    "MAC_POOL",
    "NAT_GATEWAY",
    "NAT_NETWORK_ID",
    "NAT_NETWORK_NAME",
    "NAT_SUBNET",
    "OWNER",
    "VARIANTS",
    "VSMB_GUEST_PREFIX",
    "DisplayPipe",
    "GuestLink",
    "HostFacts",
    "PathStyle",
    "Plan",
    "PlanDocuments",
    "ScratchPlan",
    "SessionOptions",
    "Variant",
    "inbound_port_acl",
    "normalise_mac",
    "plan",
    "plan_documents",
    "port_mapping_policy",
]

Variant = Literal["documented", "wsb-compat"]
PathStyle = Literal["windows", "posix"]
VARIANTS: tuple[str, ...] = get_args(Variant)
PATH_STYLES: tuple[str, ...] = get_args(PathStyle)


#: The shared NAT network: one for all sandboxes, with a fixed id so that concurrent creators
#: race on ``HcnCreateNetwork`` and the loser gets HCN_E_NETWORK_ALREADY_EXISTS (HCNHResult.md).
NAT_NETWORK_ID = "6f1b5c3e-0000-4000-8000-68637373616e"
NAT_NETWORK_NAME = "hcs-sandbox-nat"
NAT_SUBNET = "172.30.0.0/24"
NAT_GATEWAY = "172.30.0.1"
#: The MAC pool hcsshim's tests give a NAT network (hcsshim ``hcn/hcnutils_test.go``;
#: HNS_Schema.md ``MacPool``): Microsoft's Hyper-V OUI 00-15-5D.
MAC_POOL = ("00-15-5D-52-C0-00", "00-15-5D-52-CF-FF")
#: Endpoint names start with this so prune can tell ours apart (sandbox/network.py).
ENDPOINT_NAME_PREFIX = "hcs-sandbox-"

#: hcsshim's default utility-VM scratch size is 20 GB (``internal/wcow``); a dynamic VHDX.
DEFAULT_SCRATCH_BYTES = 20 * 1024**3

#: Guest path of vSMB share ``X`` in a Windows guest: ``<prefix>X`` (hcsshim
#: ``internal/uvm/vsmb.go``).
VSMB_GUEST_PREFIX = "\\\\?\\VMSMB\\VSMB-{dcc079ae-60ba-4d07-847c-3493609c0870}\\"

#: ``HcsModifyComputeSystem`` resource path for GPU-PV, "Only Update", applied after Start
#: (HcsModifyComputeSystem.md; hcsshim ``internal/hcs/resourcepaths``; NanaBox
#: ``ConfigurationManager.cpp`` and App Sandbox ``hcs_vm.c`` apply it after Start).
GPU_RESOURCE_PATH = "VirtualMachine/ComputeTopology/Gpu"

#: UEFI boot application served over VmbFs (Windows Sandbox's document §1.3; hcsshim
#: ``create_wcow.go``).
_BOOTMGR = "\\EFI\\Microsoft\\Boot\\bootmgfw.efi"
#: hcsshim's SCSI controller 0 key for Windows utility VMs (``internal/protocol/guestrequest``
#: ``ScsiControllerGuids``; ``internal/uvm/create_wcow.go``).
_HCSSHIM_SCSI0 = "df6d0690-79e5-55b6-a5ec-c1e2f77f580a"
#: The controller name Microsoft's tutorial uses and boots from (Reference/Tutorial.md).
_TUTORIAL_SCSI = "Primary disk"
#: Windows Sandbox's controller name (§1.3).
_WSB_SCSI = "primary"

# HvSocket security descriptors (SDDL).  Windows Sandbox: SYSTEM only for both defaults
# (§1.3).  hcsshim's utility VM: SYSTEM + built-in Administrators (create_wcow.go; §4.8).
_SDDL_SYSTEM = "D:P(A;;FA;;;SY)"
_SDDL_SYSTEM_ADMINS = "D:P(A;;FA;;;SY)(A;;FA;;;BA)"
_SDDL_DENY_EVERYONE = "D:P(D;;FA;;;WD)"
# Windows Sandbox's HvSocket service table, as dumped (§1.3).  The service ids' meaning is not
# public; ``{user}`` is replaced by the creating user's SID.
_WSB_SERVICE_SID = "S-1-5-80-3635958274-2059881490-2225992882-984577281-633327304"
_WSB_SERVICE_TABLE: tuple[tuple[str, str, str, bool | None], ...] = (
    ("befcbc10-1381-45ab-946e-b1a12d6bce94", _SDDL_DENY_EVERYONE, _SDDL_DENY_EVERYONE, True),
    (
        "a715ac94-b745-4889-9a0f-772d85a3cfa4",
        f"D:P(A;;FA;;;{_WSB_SERVICE_SID})",
        f"D:P(A;;FA;;;{_WSB_SERVICE_SID})",
        True,
    ),
    ("7b3014c3-284a-40d4-a97f-9d23a75c6a80", _SDDL_DENY_EVERYONE, _SDDL_DENY_EVERYONE, True),
    ("e97910d9-55bb-455e-9170-114fdfce763d", _SDDL_DENY_EVERYONE, _SDDL_DENY_EVERYONE, True),
    ("e5afd2e3-9b98-4913-b37c-09de98772940", _SDDL_DENY_EVERYONE, _SDDL_DENY_EVERYONE, True),
    (
        "abd802e8-ffcc-40d2-a5f1-f04b1d12cbc8",
        "D:P(A;;FA;;;SY)(A;;FA;;;BA)(A;;FA;;;S-1-15-3-3)(A;;FA;;;{user})",
        _SDDL_DENY_EVERYONE,
        None,
    ),
    ("f58797f6-c9f3-4d63-9bd4-e52ac020e586", _SDDL_SYSTEM, _SDDL_SYSTEM, True),
)

#: Addresses internet-only sandboxes may not reach: RFC 1918 private networks, RFC 3927
#: link-local, RFC 6598 shared (carrier-grade NAT) space.
_PRIVATE_RANGES = "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,169.254.0.0/16,100.64.0.0/10"

_MIN_SCHEMA: VersionTuple = (2, 1)  # computecore.dll's first release (1809) speaks 2.1
_WSB_SCHEMA: VersionTuple = (2, 4)  # the version Windows Sandbox's document declares (§1.3)
_HCN_ACL_SCHEMA: VersionTuple = (2, 5)  # AclPolicySetting's port/protocol fields (HNS_Schema.md)

# Placeholders used by HostFacts.for_planning (clearly not real values).
_PLACEHOLDER_NS = uuid.UUID("00000000-0000-4000-8000-68637373616e")
_PLACEHOLDER_NS_BYTES = ID_NAMESPACE  # (owned.py keeps the bytes: endpoint_id derives alike)
_PLACEHOLDER_SID = "S-1-5-21-0-0-0-1001"
_PLACEHOLDER_PROGRAMDATA = "C:\\ProgramData"
_PLACEHOLDER_BASE_GUID = "00000000-0000-0000-0000-000000000000"


# --------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------


def _fail(field_name: str, value: object, why: str, remedy: str | None = None) -> SpecError:
    return SpecError(f"{why}", field=field_name, value=value, remedy=remedy)


def _version_text(version: VersionTuple) -> str:
    return f"{version[0]}.{version[1]}"


def _windows_for(version: VersionTuple) -> str:
    return SCHEMA_VERSION_MAP.get(version, f"a Windows release with HCS schema {version}")


@dataclass(frozen=True)
class HostFacts:
    """Everything the planner needs to know about the host and the new sandbox's identity.

    ``supported_schema_versions``: what ``HcsGetServiceProperties`` (``Basic``) reports;
    the highest one gates every field.  ``hcn_schema_version``: the HCN schema the host
    speaks, or None when unknown (then HCN-version checks are skipped with a warning).
    ``base_path``: host — the Windows Sandbox base image folder
    ``...\\Containers\\BaseImages\\<guid>`` (it holds ``BaseLayer\\Files``); image — the
    container base image folder (it holds ``UtilityVM``); vhdx — the disk (default: the
    spec's path).  ``sandbox_dir``: the sandbox's own folder for its files.
    ``path_style``: ``windows`` (real hosts) or ``posix`` (the simulator's host paths).
    ``terminate_on_close``: ask HCS to kill the VM when the last handle closes — only for
    ephemeral sandboxes owned by one process (``Sandbox.run()``); detached sandboxes
    (``run -d``) must outlive the CLI, so the default is False.
    ``mac_address``: a MAC to *request* for the endpoint (and the adapter).  Default None:
    the endpoint document carries no ``MacAddress``, HNS assigns one from the network's
    ``MacPool`` and the sandbox layer puts it in the adapter (:meth:`Plan.with_adapter_mac`).
    """

    sandbox_id: str
    system_id: str
    sandbox_dir: str
    base_path: str | None = None
    supported_schema_versions: tuple[VersionTuple, ...] = ((2, 1),)
    hcn_schema_version: VersionTuple | None = None
    endpoint_id: str | None = None
    adapter_id: str | None = None
    mac_address: str | None = None
    user_sid: str | None = None
    variant: Variant = "documented"
    path_style: PathStyle = "windows"
    network_id: str = NAT_NETWORK_ID
    nat_subnet: str = NAT_SUBNET
    nat_gateway: str = NAT_GATEWAY
    scratch_size_bytes: int = DEFAULT_SCRATCH_BYTES
    terminate_on_close: bool = False

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise _fail(
                "variant",
                self.variant,
                f"unknown host document variant {self.variant!r}",
                remedy="use one of " + ", ".join(VARIANTS),
            )
        if self.path_style not in PATH_STYLES:
            raise _fail(
                "path_style",
                self.path_style,
                f"unknown host path style {self.path_style!r}",
                remedy="use one of " + ", ".join(PATH_STYLES),
            )
        versions = tuple(map(tuple, self.supported_schema_versions))
        if not versions:
            raise _fail(
                "supported_schema_versions",
                versions,
                "the host reports no supported HCS schema version",
                remedy="check HcsGetServiceProperties on this host (hcs-sandbox doctor)",
            )
        object.__setattr__(self, "supported_schema_versions", versions)
        if self.scratch_size_bytes <= 0:
            raise _fail("scratch_size_bytes", self.scratch_size_bytes, "must be positive")

    @property
    def max_schema(self) -> VersionTuple:
        """The highest HCS schema version the host supports."""
        return max(self.supported_schema_versions)

    @classmethod
    def for_planning(
        cls,
        spec: SandboxSpec | None = None,
        *,
        sandbox_id: str | None = None,
        variant: Variant = "documented",
        supported_schema_versions: Sequence[VersionTuple] | None = None,
        **overrides: Any,
    ) -> HostFacts:
        """Deterministic placeholder facts for ``hcs-sandbox plan`` on any OS.

        Ids are UUIDv5 values derived from the sandbox id (itself derived from the spec's
        name, or ``sandbox_id``); paths are Windows placeholders under
        ``C:\\ProgramData\\hcs-sandbox\\sandboxes\\<id>``; the user SID is the obviously
        fake ``S-1-5-21-0-0-0-1001``.  The host is assumed to speak schema 2.1-2.6
        (Windows 11) unless ``supported_schema_versions`` says otherwise.
        """
        name = spec.name if spec is not None and spec.name else "sandbox"
        sid = sandbox_id or str(uuid.uuid5(_PLACEHOLDER_NS, f"sandbox:{name}"))
        versions = tuple(
            supported_schema_versions
            if supported_schema_versions is not None
            else sorted(v for v in SCHEMA_VERSION_MAP if v >= _MIN_SCHEMA)
        )
        base_path: str | None = None
        if spec is None or spec.base.kind == "host":
            base_path = ntpath.join(
                _PLACEHOLDER_PROGRAMDATA,
                "Microsoft",
                "Windows",
                "Containers",
                "BaseImages",
                _PLACEHOLDER_BASE_GUID,
            )
        values: dict[str, Any] = {
            "sandbox_id": sid,
            "system_id": sid,
            "sandbox_dir": ntpath.join(_PLACEHOLDER_PROGRAMDATA, "hcs-sandbox", "sandboxes", sid),
            "base_path": base_path,
            "supported_schema_versions": versions,
            "endpoint_id": str(uuid.uuid5(_PLACEHOLDER_NS, f"endpoint:{sid}")),
            "adapter_id": str(uuid.uuid5(_PLACEHOLDER_NS, f"adapter:{sid}")),
            "user_sid": _PLACEHOLDER_SID,
            "variant": variant,
            "path_style": "windows",
        }
        values.update(overrides)
        return cls(**values)

    @classmethod
    def for_sandbox(
        cls,
        *,
        sandbox_id: str,
        system_id: str,
        sandbox_dir: str,
        base_path: str | None,
        supported_schema_versions: Sequence[VersionTuple],
        path_style: PathStyle,
        variant: Variant = "documented",
        endpoint_id: str | None = None,
        user_sid: str | None = None,
        terminate_on_close: bool = False,
        **overrides: Any,
    ) -> HostFacts:
        """Facts for a real create: a per-sandbox adapter id (UUIDv5 of the sandbox id); the
        endpoint id defaults to a UUIDv5 of the sandbox id (stable across re-creates of a
        persistent sandbox).  No MAC: HNS assigns it when the endpoint is created (see
        :meth:`Plan.with_adapter_mac`)."""
        ns = _uuid5_bytes(_PLACEHOLDER_NS_BYTES, sandbox_id)
        endpoint = endpoint_id or _uuid5_text(ns, "endpoint")
        versions = tuple(supported_schema_versions)
        values: dict[str, Any] = {
            "sandbox_id": sandbox_id,
            "system_id": system_id,
            "sandbox_dir": sandbox_dir,
            "base_path": base_path,
            "supported_schema_versions": versions,
            "endpoint_id": endpoint,
            "adapter_id": _uuid5_text(ns, "adapter"),
            "user_sid": user_sid,
            "variant": variant,
            "path_style": path_style,
            "terminate_on_close": terminate_on_close,
        }
        if (
            cls is HostFacts
            and not overrides
            and variant in VARIANTS
            and path_style in PATH_STYLES
            and _plain_versions(versions)
        ):
            # Exactly what cls(**values) makes of these values (every field in its order,
            # the others at their defaults), without __init__'s 17 object.__setattr__ calls:
            # __post_init__ would pass them unchanged (a known variant and path style, a
            # non-empty tuple of tuples, the default positive scratch size).  Any other
            # value (or a subclass, or an override) goes through __init__ and its checks.
            facts = object.__new__(HostFacts)
            fields = facts.__dict__
            fields.update(_FACTS_DEFAULTS)
            fields.update(values)
            return facts
        values.update(overrides)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe view (versions as ``"2.1"`` strings)."""
        out = dataclasses.asdict(self)
        out["supported_schema_versions"] = [
            _version_text(v) for v in self.supported_schema_versions
        ]
        out["hcn_schema_version"] = (
            _version_text(self.hcn_schema_version) if self.hcn_schema_version else None
        )
        return out


#: Every HostFacts field in its order, at its default (None for the fields without one:
#: ``for_sandbox`` sets those): the start of the fields of a HostFacts it makes without
#: ``__init__``.  Made from the class, so a new field is in it.  (A test checks that no
#: field has a default_factory and that the default scratch size passes __post_init__.)
_FACTS_DEFAULTS: dict[str, Any] = {
    f.name: None if f.default is dataclasses.MISSING else f.default
    for f in dataclasses.fields(HostFacts)
}


def _plain_versions(versions: tuple[Any, ...]) -> bool:
    """Whether ``versions`` is what ``HostFacts.__post_init__`` keeps as it is: not empty,
    every version a ``tuple`` (it makes ``tuple(map(tuple, versions))``)."""
    if not versions:
        return False
    for version in versions:  # noqa: SIM110  (a loop, not all() of a generator: per create)
        if type(version) is not tuple:
            return False
    return True


def _uuid5_text(namespace: bytes, name: str) -> str:
    """``str(uuid.uuid5(UUID(bytes=namespace), name))``."""
    h = _uuid5_bytes(namespace, name).hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_MAC_RE = re.compile(r"[0-9A-Fa-f]{2}([-:])[0-9A-Fa-f]{2}(\1[0-9A-Fa-f]{2}){4}")


def normalise_mac(mac: str) -> str:
    """``mac`` in the form HCS and HNS write it: six upper-case hex pairs joined by ``-``
    (``NetworkAdapter.MacAddress`` "00-15-5D-xx-xx-xx": SchemaReference.md; HNS_Schema.md
    ``MacAddress``).  Accepts ``-`` or ``:`` separators; anything else is a SpecError."""
    text = mac.strip() if isinstance(mac, str) else ""
    if not _MAC_RE.fullmatch(text):
        raise _fail(
            "mac_address",
            mac,
            f"{mac!r} is not a MAC address (six hex pairs such as 00-15-5D-52-C0-02)",
            remedy="pass the MacAddress HNS reported for the endpoint",
        )
    return text.replace(":", "-").upper()


# --------------------------------------------------------------------------------------
# Outputs
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScratchPlan:
    """The scratch disk to make (fields match ``storage.ScratchDisk``).

    ``method``: ``create`` (new dynamic VHDX + ``HcsFormatWritableLayerVhd``),
    ``differencing`` (a child of ``parent``, which is never written) or ``copy`` (a file
    copy of the template ``parent``).  ``size_bytes`` is the size of a ``create`` disk; a
    ``differencing`` disk has its parent's size (``size_bytes`` 0).
    """

    path: str
    method: Literal["create", "differencing", "copy"]
    size_bytes: int
    parent: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class GuestLink:
    """How a mapped folder appears in the guest: vSMB share ``share`` (at
    ``guest_share_path``) is linked at ``guest_path`` after start by
    :func:`hcs_sandbox.sandbox.files.link_created_mappings`."""

    share: str
    host_path: str
    guest_path: str
    read_only: bool
    guest_share_path: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class DisplayPipe:
    """A display named pipe declared in the document: ``kind`` ``basic`` (VideoMonitor) or
    ``enhanced`` (EnhancedModeVideo); only ``access_sids`` may open it."""

    kind: str
    pipe: str
    access_sids: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "pipe": self.pipe, "access_sids": list(self.access_sids)}


@dataclass(frozen=True)
class SessionOptions:
    """RDP-client settings for a desktop viewer (Windows Sandbox's clipboard, audio, video,
    printer and protected-client settings are RDP client settings, not HCS devices:
    Microsoft's IMsRdpClientAdvancedSettings5::RedirectClipboard docs; IronRDP
    ``crates/ironrdp-agent/src/sandbox.rs``).  All off unless asked."""

    clipboard: bool = False
    audio_input: bool = False
    video_input: bool = False
    printer: bool = False
    protected_client: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Plan:
    """Everything to create one sandbox.  ``to_dict()`` is what ``plan --json`` prints."""

    spec: SandboxSpec
    facts: HostFacts
    compute_system: ComputeSystem
    document: dict[str, Any]
    schema_version: VersionTuple
    scratch: ScratchPlan | None
    guest_state_file: str | None
    runtime_state_file: str | None
    grants: tuple[str, ...]
    network: HostComputeNetwork | None
    endpoint: HostComputeEndpoint | None
    guest_links: tuple[GuestLink, ...]
    display_pipes: tuple[DisplayPipe, ...]
    session: SessionOptions
    gpu_request: dict[str, Any] | None
    logon_command: str | None
    terminate_on_last_handle_closed: bool
    warnings: tuple[str, ...] = field(default=())
    #: For each warning, the spec field it is about (``network``, ``gpu``, ``display``,
    #: ``logon_command``, ``ports``, ``mapped_folders[0]``, ...), or None (an experimental
    #: choice, a fact of the host): what the CLI needs to print each setting's warning once
    #: next to a ``.wsb``'s (``WsbResult.warning_fields``).  Empty: none is about a field.
    warning_fields: tuple[str | None, ...] = field(default=())

    def with_adapter_mac(self, mac: str) -> Plan:
        """This plan with ``mac`` as the ``MacAddress`` of the adapter bound to this plan's
        endpoint: the MAC HNS assigned when the endpoint was created (read back with
        ``HcnQueryEndpointProperties``).  hcsshim does the same: the adapter gets the
        endpoint's ``MacAddress`` (``internal/uvm/network.go``; ``internal/vm/hcs/network.go``
        ``AddNIC``).  Pure: returns a new Plan (document rebuilt); ``self`` is unchanged.
        Raises SpecError when the plan has no network adapter or ``mac`` is not a MAC."""
        if self.endpoint is None:
            raise _fail(
                "network",
                self.spec.network,
                "this plan has no network endpoint, so no adapter to give a MAC",
                remedy="this is a bug in the caller: only networked sandboxes get a MAC",
            )
        value = normalise_mac(mac)
        system = type(self.compute_system).from_dict(self.document)
        vm = system.VirtualMachine
        adapters = vm.Devices.NetworkAdapters if vm and vm.Devices else None
        bound = [a for a in (adapters or {}).values() if a.EndpointId == self.endpoint.ID]
        if not bound:
            raise _fail(
                "network",
                self.spec.network,
                f"the compute-system document has no adapter for endpoint {self.endpoint.ID}",
                remedy="this is a bug in the planner; please report it",
            )
        for adapter in bound:
            adapter.MacAddress = value
        return dataclasses.replace(self, compute_system=system, document=system.to_dict())

    @property
    def network_document(self) -> dict[str, Any] | None:
        """The ``HcnCreateNetwork`` document of the shared network, or None."""
        return self.network.to_dict() if self.network is not None else None

    @property
    def endpoint_document(self) -> dict[str, Any] | None:
        """The ``HcnCreateEndpoint`` document of this sandbox's endpoint, or None."""
        return self.endpoint.to_dict() if self.endpoint is not None else None

    def to_dict(self) -> dict[str, Any]:
        """The plan as JSON-ready data (the exact shape of ``hcs-sandbox plan --json``)."""
        return {
            "spec": self.spec.to_dict(),
            "base": {
                "kind": self.spec.base.kind,
                "variant": self.facts.variant if self.spec.base.kind == "host" else None,
                "path": _base_path(self.spec, self.facts),
            },
            "ids": {
                "sandbox_id": self.facts.sandbox_id,
                "system_id": self.facts.system_id,
                "network_id": self.network.ID if self.network is not None else None,
                "endpoint_id": self.endpoint.ID if self.endpoint is not None else None,
            },
            "host_facts": self.facts.to_dict(),
            "schema_version": _version_text(self.schema_version),
            "compute_system": self.document,
            "scratch": self.scratch.to_dict() if self.scratch is not None else None,
            "guest_state_file": self.guest_state_file,
            "runtime_state_file": self.runtime_state_file,
            "grants": list(self.grants),
            "network": self.network_document,
            "endpoint": self.endpoint_document,
            "guest_links": [g.to_dict() for g in self.guest_links],
            "display": {
                "mode": self.spec.display,
                "pipes": [p.to_dict() for p in self.display_pipes],
            },
            "session": self.session.to_dict(),
            "after_start": {
                "gpu": self.gpu_request,
                "logon_command": self.logon_command,
                "environment": dict(self.spec.environment),
            },
            "terminate_on_last_handle_closed": self.terminate_on_last_handle_closed,
            "warnings": list(self.warnings),
        }


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------


class _Paths:
    """Host path joining in the host's style (Windows or POSIX), without touching disk."""

    def __init__(self, style: PathStyle) -> None:
        self.style = style
        self._mod = ntpath if style == "windows" else posixpath

    def join(self, base: str, *parts: str) -> str:
        return str(self._mod.join(base, *parts))

    def foreign(self, path: str) -> bool:
        """True when ``path`` is written in the other style."""
        if self.style == "windows":
            return hostpath.is_posix_absolute(path) and not hostpath.is_windows_absolute(path)
        return hostpath.is_windows_absolute(path)


def _foreign_path_text(style: PathStyle) -> str:
    """What a warning says of a host path written in the other style than the planned
    host's (``_Paths.foreign``): true both in ``plan`` (a Windows host, wherever it runs)
    and in a create (the host it runs on)."""
    if style == "windows":
        return (
            "not a Windows path, and the host planned for is Windows: give the full host "
            "path with a drive letter (C:\\data)"
        )
    return (
        "a Windows path, and the host planned for takes POSIX paths (the simulator's): "
        "give the full host path (/srv/data)"
    )


def _loosened(spec: SandboxSpec) -> list[tuple[str, str | None]]:
    """``spec.loosened_isolation()``, each sentence with the spec field it is about
    (``network``, ``ports``, ``clipboard``, ..., ``mapped_folders[i]``): the sentences of
    one setting at a time, as the spec words them (a sentence none of them gives: None)."""
    messages = spec.loosened_isolation()
    if not messages:
        return []
    about: dict[str, str] = {}

    def learn(field_name: str, alone: SandboxSpec, besides: SandboxSpec | None = None) -> None:
        known = set(besides.loosened_isolation()) if besides is not None else set()
        for message in alone.loosened_isolation():
            if message not in known:
                about.setdefault(message, field_name)

    empty = SandboxSpec()
    if spec.network != "none":
        networked = empty.replace(network=spec.network)
        learn("network", networked)
        if spec.ports:
            learn("ports", networked.replace(ports=spec.ports), networked)
    for switch in ("clipboard", "audio_input", "video_input", "printer", "gpu"):
        if getattr(spec, switch):
            learn(switch, empty.replace(**{switch: True}))
    for index, folder in enumerate(spec.mapped_folders):
        if not folder.read_only:
            learn(f"mapped_folders[{index}]", empty.replace(mapped_folders=(folder,)))
    return [(message, about.get(message)) for message in messages]


def _base_path(spec: SandboxSpec, facts: HostFacts) -> str | None:
    if spec.base.kind == "host":
        return facts.base_path
    return facts.base_path or spec.base.path


def _even(mb: int) -> int:
    """hcsshim rounds memory to an even number of MB (2 MB pages; internal/uvm/create.go)."""
    return mb + (mb & 1)


# --------------------------------------------------------------------------------------
# The planner
# --------------------------------------------------------------------------------------


def plan(spec: SandboxSpec, facts: HostFacts) -> Plan:
    """Every document and file needed to create ``spec`` on a host described by ``facts``.

    Pure: no I/O.  Raises :class:`~hcs_sandbox.errors.SpecError` when the host cannot run
    the spec (schema too old, missing facts), naming the setting and what it needs.
    """
    return _Planner(spec, facts).build()


# --------------------------------------------------------------------------------------
# What a create needs, from a per-process cache of planned documents
# --------------------------------------------------------------------------------------


class PlanDocuments:
    """What creating a sandbox needs from its :class:`Plan`, as plain data (no schema
    objects): :func:`plan_documents` gives it, :meth:`of` derives it from a ``Plan``.

    Fields, each as the ``Plan`` has it (dicts as ``to_dict`` gives them):
    ``document`` (``Plan.document``), ``scratch``, ``guest_state_file``, ``grants``,
    ``network_document``, ``endpoint_document``, ``warnings``, ``warning_fields``,
    ``gpu_request``, ``terminate_on_last_handle_closed``, ``guest_links``
    (``GuestLink.to_dict()`` each);
    ``endpoint_id`` (the endpoint's ``ID``, or None) and ``network`` (the spec's network
    mode) are what :meth:`with_adapter_mac` needs.  Every call of :func:`plan_documents`
    returns new dicts: a caller may change them.
    """

    __slots__ = (
        "_document",
        "_document_json",
        "endpoint_document",
        "endpoint_id",
        "gpu_request",
        "grants",
        "guest_links",
        "guest_state_file",
        "network",
        "network_document",
        "scratch",
        "terminate_on_last_handle_closed",
        "warning_fields",
        "warnings",
    )

    def __init__(
        self,
        *,
        document: dict[str, Any] | None,
        scratch: ScratchPlan | None,
        guest_state_file: str | None,
        grants: tuple[str, ...],
        network_document: dict[str, Any] | None,
        endpoint_document: dict[str, Any] | None,
        warnings: tuple[str, ...],
        gpu_request: dict[str, Any] | None,
        terminate_on_last_handle_closed: bool,
        guest_links: tuple[dict[str, Any], ...],
        endpoint_id: str | None,
        network: str,
        document_json: str | None = None,
        warning_fields: tuple[str | None, ...] = (),
    ) -> None:
        if document is None and document_json is None:
            raise TypeError("PlanDocuments needs the document or its JSON text")
        self._document = document
        self._document_json = document_json
        self.scratch = scratch
        self.guest_state_file = guest_state_file
        self.grants = grants
        self.network_document = network_document
        self.endpoint_document = endpoint_document
        self.warnings = warnings
        self.gpu_request = gpu_request
        self.terminate_on_last_handle_closed = terminate_on_last_handle_closed
        self.guest_links = guest_links
        self.endpoint_id = endpoint_id
        self.network = network
        self.warning_fields = warning_fields

    @property
    def document(self) -> dict[str, Any]:
        """The compute-system document (``Plan.document``); parsed from the planner's text
        on first use when the plan came as text (a create that gives HCS the text never
        needs the dict).  Reading or setting it ends :attr:`document_json`: whoever has
        the dict may change it."""
        document = self._document
        if document is None:
            assert self._document_json is not None
            document = self._document = _json.loads(self._document_json)
        self._document_json = None
        return document

    @document.setter
    def document(self, document: dict[str, Any]) -> None:
        self._document = document
        self._document_json = None

    @property
    def document_json(self) -> str | None:
        """:attr:`document` as HCS is given it (``json.dumps(document, separators=(",",
        ":"))``: what ``hcs._call.dumps`` makes of the dict), when :func:`plan_documents`
        made it from a template and nobody has read or set :attr:`document` since; None
        otherwise (then give HCS the dict)."""
        return self._document_json

    @classmethod
    def of(cls, planned: Plan) -> PlanDocuments:
        """The documents of ``planned`` (the slow path of :func:`plan_documents`)."""
        return cls(
            document=planned.document,
            scratch=planned.scratch,
            guest_state_file=planned.guest_state_file,
            grants=planned.grants,
            network_document=planned.network_document,
            endpoint_document=planned.endpoint_document,
            warnings=planned.warnings,
            gpu_request=planned.gpu_request,
            terminate_on_last_handle_closed=planned.terminate_on_last_handle_closed,
            guest_links=tuple(link.to_dict() for link in planned.guest_links),
            endpoint_id=planned.endpoint.ID if planned.endpoint is not None else None,
            network=planned.spec.network,
            warning_fields=planned.warning_fields,
        )

    def _values(self) -> list[Any]:
        """The fields as one JSON-ready list (the cache's template form)."""
        scratch = self.scratch
        return [
            self.document,
            [scratch.path, scratch.method, scratch.size_bytes, scratch.parent]
            if scratch is not None
            else None,
            self.guest_state_file,
            list(self.grants),
            self.network_document,
            self.endpoint_document,
            list(self.warnings),
            self.gpu_request,
            self.terminate_on_last_handle_closed,
            list(self.guest_links),
            self.endpoint_id,
            self.network,
            list(self.warning_fields),
        ]

    @classmethod
    def _from_values(cls, values: list[Any], document_json: str | None = None) -> PlanDocuments:
        document = values[0]
        if document is None and document_json is None:
            raise TypeError("PlanDocuments needs the document or its JSON text")
        scratch = values[1]
        # What __init__ sets, without its keyword arguments (every create makes one).
        made = cls.__new__(cls)
        made._document = document
        made._document_json = document_json
        made.scratch = _scratch_plan(*scratch) if scratch is not None else None
        made.guest_state_file = values[2]
        made.grants = tuple(values[3])
        made.network_document = values[4]
        made.endpoint_document = values[5]
        made.warnings = tuple(values[6])
        made.gpu_request = values[7]
        made.terminate_on_last_handle_closed = values[8]
        made.guest_links = tuple(values[9])
        made.endpoint_id = values[10]
        made.network = values[11]
        made.warning_fields = tuple(values[12])
        return made

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PlanDocuments):
            return NotImplemented
        return self._values() == other._values()

    __hash__ = None  # type: ignore[assignment]  # mutable dicts inside

    def __repr__(self) -> str:
        return f"PlanDocuments({self._values()!r})"

    def with_adapter_mac(self, mac: str) -> dict[str, Any]:
        """A copy of ``document`` whose adapter bound to the endpoint has ``mac`` as its
        ``MacAddress``: the same document as ``Plan.with_adapter_mac(mac).document``
        (hcsshim ``internal/uvm/network.go``: the adapter gets the endpoint's MAC), with the
        same errors.  ``document`` itself is unchanged."""
        if self.endpoint_id is None:
            raise _fail(
                "network",
                self.network,
                "this plan has no network endpoint, so no adapter to give a MAC",
                remedy="this is a bug in the caller: only networked sandboxes get a MAC",
            )
        value = normalise_mac(mac)
        document: dict[str, Any] = _json.loads(_json.dumps(self.document))
        vm = document.get("VirtualMachine")
        devices = vm.get("Devices") if isinstance(vm, dict) else None
        adapters = devices.get("NetworkAdapters") if isinstance(devices, dict) else None
        bound = [
            key
            for key, adapter in (adapters or {}).items()
            if isinstance(adapter, dict) and adapter.get("EndpointId") == self.endpoint_id
        ]
        if not bound:
            raise _fail(
                "network",
                self.network,
                f"the compute-system document has no adapter for endpoint {self.endpoint_id}",
                remedy="this is a bug in the planner; please report it",
            )
        assert adapters is not None
        for key in bound:
            # Through the model, as Plan.with_adapter_mac does: the field keeps its place.
            adapter = NetworkAdapter.from_dict(adapters[key])
            adapter.MacAddress = value
            adapters[key] = adapter.to_dict()
        return document


#: The HostFacts fields that differ from sandbox to sandbox.  The planner uses each only
#: verbatim inside strings (ids, paths joined onto ``sandbox_dir``, names), so a plan made
#: with marker strings in their place becomes any sandbox's plan by replacing the markers.
_PER_SANDBOX = ("sandbox_id", "system_id", "sandbox_dir", "endpoint_id", "adapter_id")
#: The SandboxSpec fields no document depends on (they reach Plan.to_dict() and the record,
#: never PlanDocuments): left out of the cache key so sandboxes of one spec share an entry.
#: (Whether there is a logon command is in the key: it has a warning, which does not name
#: the command.)
_NOT_PLANNED = ("name", "labels", "environment", "logon_command")
#: The SandboxSpec fields in the key: every other field (a test checks the two lists cover
#: every field, so a new field is in the key unless someone decides otherwise).
_PLANNED = (
    "base",
    "memory_mb",
    "cpus",
    "network",
    "ports",
    "mapped_folders",
    "gpu",
    "clipboard",
    "audio_input",
    "video_input",
    "printer",
    "protected_client",
    "display",
    "persistence",
)
#: Every other HostFacts field is in the key as it is.
_FACTS_KEYED = (
    "base_path",
    "supported_schema_versions",
    "hcn_schema_version",
    "mac_address",
    "user_sid",
    "variant",
    "path_style",
    "network_id",
    "nat_subnet",
    "nat_gateway",
    "scratch_size_bytes",
    "terminate_on_close",
)
_MARK = "@@hcs-sandbox-fact-"
_MARKERS = {name: f"{_MARK}{i}@@" for i, name in enumerate(_PER_SANDBOX)}
_MARKER_RE = re.compile(re.escape(_MARK) + r"(\d)@@")
_CACHE_MAX = 64
#: key -> the template: the JSON texts of PlanDocuments._values() planned with markers (the
#: document's, the other values'), each split at the markers (``[text, index, text, index,
#: ..., text]``, ``index`` into :data:`_PER_SANDBOX`); None when this key's plans cannot be
#: made from a template (planned the slow way every time).
_documents_cache: dict[tuple[Any, ...], tuple[list[Any], list[Any]] | None] = {}


_spec_planned = operator.attrgetter(*_PLANNED)
_facts_keyed = operator.attrgetter(*_FACTS_KEYED)
_facts_per_sandbox = operator.attrgetter(*_PER_SANDBOX)


def _scratch_plan(path: str, method: Any, size_bytes: int, parent: str | None) -> ScratchPlan:
    """``ScratchPlan(path, method, size_bytes, parent)`` without the frozen dataclass's
    ``__init__`` (four ``object.__setattr__`` calls; it has no ``__post_init__``)."""
    plan = object.__new__(ScratchPlan)
    plan.__dict__.update(path=path, method=method, size_bytes=size_bytes, parent=parent)
    return plan


#: The JSON decoder's scanner (what ``json.loads`` runs for a ``str``: a default
#: ``JSONDecoder``'s ``scan_once``, ``json.scanner.make_scanner`` of it): see :func:`_parse`.
# (typeshed types make_scanner's argument as a make_scanner, not the decoder it takes)
_SCAN = _json_scanner.make_scanner(_json.JSONDecoder())  # type: ignore[arg-type]


def _parse(text: str) -> Any:
    """``json.loads(text)`` for a text :func:`_fill` made (JSON from ``json.dumps`` with no
    whitespace around it): the scanner alone, without ``loads``' type checks and the
    decoder's two whitespace matches.  A text it does not read whole goes to ``json.loads``
    (its value or its error)."""
    try:
        value, end = _SCAN(text, 0)
    except StopIteration:
        end = -1
    if end != len(text):
        return _json.loads(text)
    return value


def _documents_key(spec: SandboxSpec, facts: HostFacts) -> tuple[Any, ...] | None:
    """The cache key of ``(spec, facts)``; None when a per-sandbox value is not text (a
    ``PurePath`` folder, say): planned without the cache."""
    directory = facts.sandbox_dir
    per_sandbox = _facts_per_sandbox(facts)
    for value in per_sandbox:  # (a loop, not all() of a generator: every create asks)
        if value is not None and type(value) is not str:
            return None
    if facts.path_style == "windows":
        joined = ntpath.join(directory, "f") == directory + "\\f"
    elif type(directory) is str:
        # posixpath.join(directory, "f") adds "/f" exactly when the text is not empty and
        # does not end with "/": the join's answer, without its Python calls.
        joined = directory != "" and directory[-1] != "/"
    else:
        joined = posixpath.join(directory, "f") == directory + "/f"
    planned = _spec_planned(spec)
    keyed = _facts_keyed(facts)
    return (
        planned,
        keyed,
        # Equal values of other types are other keys (0 == False, 1.0 == 1, but the
        # document would show the value as given).
        tuple(map(type, planned)),
        tuple(map(type, keyed)),
        # Which per-sandbox values are set, which are equal: the planner may branch on that
        # (``adapter_id or endpoint_id``, ``if not endpoint_id``).
        tuple(map(bool, per_sandbox)),
        facts.sandbox_id == facts.system_id,
        facts.endpoint_id == facts.adapter_id,
        # A logon command has a warning (PlanDocuments.warnings), whatever the command.
        spec.logon_command is not None,
        # Joining onto the folder adds a separator unless it ends with one (or is "C:" or
        # empty): one key per shape of folder.
        joined,
    )


def _split(text: str) -> list[Any]:
    parts: list[Any] = _MARKER_RE.split(text)
    for i in range(1, len(parts), 2):
        parts[i] = int(parts[i])
    return parts


def _fill(template: list[Any], facts: HostFacts, values: list[str] | None = None) -> str:
    """The template's text with each marker replaced by the fact's value, as the contents
    of a JSON string (the markers only sit inside JSON strings).  Values are put in, never
    searched: a value that looks like a marker stays as it is.  ``values``:
    :func:`_fill_values` of ``facts``, when the caller has it."""
    if values is None:
        values = _fill_values(facts)
    parts = template[:]
    for i in range(1, len(parts), 2):
        parts[i] = values[parts[i]]
    return "".join(parts)


def _fill_values(facts: HostFacts) -> list[str]:
    """The per-sandbox facts as :func:`_fill` puts them in (JSON string contents)."""
    return [
        "" if value is None else _encode_json_string(value)[1:-1]
        for value in _facts_per_sandbox(facts)
    ]


def plan_documents(spec: SandboxSpec, facts: HostFacts) -> PlanDocuments:
    """``PlanDocuments.of(plan(spec, facts))``, from a per-process cache when it can.

    The planner is pure and its per-sandbox inputs (the ids and the sandbox folder in
    ``facts``, :data:`_PER_SANDBOX`) only appear verbatim inside strings, so the first plan of
    a spec and host is also made with marker strings in their place; that template is kept
    (JSON text) under a key of everything else the plan depends on (the spec without its
    name, labels, environment and logon command; every other host fact).  Later sandboxes
    of that key get the template with their values put in, parsed: new objects each time
    (and the compute-system document's text, ``PlanDocuments.document_json``).
    The first use of a template is checked against the real plan; a key whose check fails
    (or whose plan contains the marker text) is planned the slow way from then on.  Nothing
    outside the arguments is read, so the cache cannot go stale (the base, the schema
    versions, the variant... are facts, in the key).  Errors are the planner's (a plan
    that fails is never cached).
    """
    key = _documents_key(spec, facts)
    if key is None:
        return PlanDocuments.of(plan(spec, facts))
    try:
        template = _documents_cache[key]
    except KeyError:
        pass
    except TypeError:  # an unhashable fact (a list where a tuple belongs): no cache
        return PlanDocuments.of(plan(spec, facts))
    else:
        if template is None:
            return PlanDocuments.of(plan(spec, facts))
        # The document stays text until someone asks for the dict (PlanDocuments.document).
        filled = _fill_values(facts)  # once for both templates
        values = [None, *_parse(_fill(template[1], facts, filled))]
        return PlanDocuments._from_values(values, _fill(template[0], facts, filled))
    documents = PlanDocuments.of(plan(spec, facts))
    if len(_documents_cache) >= _CACHE_MAX:
        _documents_cache.clear()
    _documents_cache[key] = _make_template(spec, facts, documents)
    return documents


def _make_template(
    spec: SandboxSpec, facts: HostFacts, real: PlanDocuments
) -> tuple[list[Any], list[Any]] | None:
    """The template for the key of ``(spec, facts)``, or None when a template would not
    give ``real`` back (the planner used a per-sandbox value other than verbatim).

    Two templates: the compute-system document's JSON text as HCS is given it
    (:data:`_COMPACT`: the filled text is ``PlanDocuments.document_json``), and the other
    values' JSON text."""
    values = real._values()
    real_texts = (_dumps(values[0]), _dumps(values[1:]))
    if any(_MARK.lower() in text.lower() for text in real_texts) or (
        _json.loads(real_texts[0]) != values[0] or _json.loads(real_texts[1]) != values[1:]
    ):
        return None  # the marker text is in the user's own values; not JSON-exact
    marks: dict[str, Any] = {n: _MARKERS[n] for n in _PER_SANDBOX if getattr(facts, n)}
    marked = dataclasses.replace(facts, **marks)
    try:
        marked_values = PlanDocuments.of(plan(spec, marked))._values()
    except SpecError:
        return None
    texts = (_dumps(marked_values[0]), _dumps(marked_values[1:]))
    for text in texts:
        if text.lower().count(_MARK.lower()) != len(_MARKER_RE.findall(text)):
            return None  # a marker was changed (case, cut): not a verbatim use
    template = (_split(texts[0]), _split(texts[1]))
    if _fill(template[0], facts) != real_texts[0]:
        return None
    if _json.loads(_fill(template[1], facts)) != values[1:]:
        return None
    return template


#: The separators of the compute-system document's text (``hcs._call.dumps``).
_COMPACT = (",", ":")


def _dumps(value: Any) -> str:
    return _json.dumps(value, separators=_COMPACT)


class _Planner:
    def __init__(self, spec: SandboxSpec, facts: HostFacts) -> None:
        self.spec = spec
        self.facts = facts
        self.paths = _Paths(facts.path_style)
        self.max = facts.max_schema
        self.wsb = spec.base.kind == "host" and facts.variant == "wsb-compat"
        self.warnings: list[str] = []
        #: The spec field each warning is about, or None (Plan.warning_fields).
        self.warning_fields: list[str | None] = []
        self.grants: list[str] = []

    def warn(self, message: str, about: str | None = None) -> None:
        """A warning; ``about``: the spec field it concerns (``Plan.warning_fields``)."""
        self.warnings.append(message)
        self.warning_fields.append(about)

    # -- entry ---------------------------------------------------------------------------

    def build(self) -> Plan:
        spec, facts = self.spec, self.facts
        if self.max < _MIN_SCHEMA:
            raise _fail(
                "supported_schema_versions",
                [_version_text(v) for v in facts.supported_schema_versions],
                f"this host supports HCS schema up to {_version_text(self.max)}; hcs-sandbox "
                f"needs {_version_text(_MIN_SCHEMA)} ({_windows_for(_MIN_SCHEMA)})",
                remedy="update Windows",
            )
        if self.wsb and self.max < _WSB_SCHEMA:
            raise _fail(
                "variant",
                facts.variant,
                f"the wsb-compat document declares HCS schema {_version_text(_WSB_SCHEMA)} "
                f"({_windows_for(_WSB_SCHEMA)} or later) but this host supports up to "
                f"{_version_text(self.max)}",
                remedy="use the documented variant",
            )
        for message, field_name in _loosened(spec):
            self.warn(message, field_name)
        if spec.logon_command is not None:
            # docs/exec.md, "Isolation trade-off": the log share the logon command writes
            # its output to is writable by the guest, with no quota, until it ends.  The
            # text does not name the command: the planned-documents cache keys only on
            # whether there is one (_documents_key).
            self.warn(
                "a logon command is set: until it ends, the guest can write to one host "
                "folder (its log share; no quota, so it can fill the host's disk)",
                "logon_command",
            )

        scratch, guest_state, boot_devices, chipset = self._base()
        devices = boot_devices
        links = self._mapped_folders(devices)
        pipes = self._display(devices)
        network, endpoint = self._network(devices)
        gpu = self._gpu()
        session = self._session()
        terminate = facts.terminate_on_close and spec.persistence == "ephemeral"

        vm = VirtualMachine(
            StopOnReset=True,
            Chipset=chipset,
            ComputeTopology=self._topology(),
            Devices=devices,
            GuestState=GuestState(GuestStateFilePath=guest_state) if guest_state else None,
            GuestConnection=self._guest_connection(),
        )
        if self.wsb:
            vm.RunInSilo = RunInSilo(SiloBaseOsPath=self._os_files(), NotifySiloJobCreated=True)
            vm.LaunchOptions = LaunchOptions(Type="None")
        system = ComputeSystem(
            Owner=OWNER,
            VirtualMachine=vm,
            ShouldTerminateOnLastHandleClosed=terminate,
        )
        floor = _WSB_SCHEMA if self.wsb else _MIN_SCHEMA
        needed = required_schema_version(system)
        declared = max(floor, needed)
        system.SchemaVersion = Version.of(declared)
        self._check_versions(system, declared, needed)
        if self.wsb:
            hidden = undocumented_fields(system)
            self.warn(
                "experimental: the wsb-compat document copies Windows Sandbox's own document, "
                f"including {len(hidden)} fields Microsoft does not document "
                f"({', '.join(sorted({p.rsplit('.', 1)[-1] for p in hidden}))})"
            )

        if spec.base.kind == "host" and spec.persistence == "persistent":
            self.warn(
                "persistent host-base sandbox: the scratch disk is tied to this host's Windows "
                "Sandbox base image, which Windows regenerates after updates"
            )
        # One warning per text (the first one's field).
        about: dict[str, str | None] = {}
        for message, field_name in zip(self.warnings, self.warning_fields, strict=True):
            about.setdefault(message, field_name)
        return Plan(
            spec=spec,
            facts=facts,
            compute_system=system,
            document=system.to_dict(),
            schema_version=declared,
            scratch=scratch,
            guest_state_file=guest_state,
            runtime_state_file=None,
            grants=tuple(dict.fromkeys(self.grants)),
            network=network,
            endpoint=endpoint,
            guest_links=links,
            display_pipes=pipes,
            session=session,
            gpu_request=gpu,
            logon_command=spec.logon_command,
            terminate_on_last_handle_closed=terminate,
            warnings=tuple(about),
            warning_fields=tuple(about.values()),
        )

    def _check_versions(
        self, system: ComputeSystem, declared: VersionTuple, needed: VersionTuple
    ) -> None:
        # ``needed`` (required_schema_version of ``system``) bounds every set field's
        # version: when the host knows it, no field is too new (one walk, not two).
        too_new = [] if needed <= self.max else fields_newer_than(system, self.max)
        if too_new or declared > self.max:
            need = max(declared, required_schema_version(system))
            raise _fail(
                "supported_schema_versions",
                [_version_text(v) for v in self.facts.supported_schema_versions],
                f"this sandbox needs HCS schema {_version_text(need)} "
                f"({_windows_for(need)}) for {', '.join(too_new) or 'SchemaVersion'}, but "
                f"this host supports up to {_version_text(self.max)}",
                remedy="update Windows or drop the setting that needs it",
            )

    # -- base ----------------------------------------------------------------------------

    def _os_files(self) -> str:
        base = _base_path(self.spec, self.facts)
        assert base is not None
        if self.spec.base.kind == "host":
            return self.paths.join(base, "BaseLayer", "Files")
        return self.paths.join(base, "UtilityVM", "Files")

    def _file(self, name: str) -> str:
        return self.paths.join(self.facts.sandbox_dir, name)

    def _base(self) -> tuple[ScratchPlan, str | None, Devices, Chipset]:
        spec, facts = self.spec, self.facts
        kind = spec.base.kind
        base = _base_path(spec, facts)
        if base is None:
            raise _fail(
                "base_path",
                None,
                "the host facts do not say where the Windows Sandbox base image is",
                remedy="enable Windows Sandbox (hcs-sandbox doctor explains how) or use "
                "--base image:PATH / --base vhdx:PATH",
            )
        if self.paths.foreign(base):
            self.warn(f"the base path {base} is {_foreign_path_text(facts.path_style)}")
        scratch_path = self._file("sandbox.vhdx")
        vmgs = self._file("sandbox.vmgs")
        if kind == "host":
            scratch = ScratchPlan(scratch_path, "create", facts.scratch_size_bytes)
            attachment = Attachment(Type=AttachmentType.VIRTUAL_DISK, Path=scratch_path)
            controller = Scsi(Attachments={"0": attachment})
            if self.wsb:
                # As dumped (§1.3): hcsshim attachment.go flags plus 2.1/2.3 fields.
                attachment.CachingMode = CachingMode.READ_ONLY_CACHED
                attachment.NoWriteHardening = True
                attachment.DisableExpansionOptimization = True
                attachment.IgnoreRelativeLocator = True
                attachment.CaptureIoAttributionContext = True
                attachment.SupportCompressedVolumes = True
                controller.DisableInterruptBatching = True
            devices = Devices(
                Scsi={_WSB_SCSI: controller},
                HvSocket=self._hvsocket(_SDDL_SYSTEM, _SDDL_SYSTEM),
                VirtualSmb=VirtualSmb(
                    Shares=[self._os_share_wsb()],
                    DirectFileMappingInMB=4096 if self.wsb else 1024,
                ),
            )
            if self.wsb:
                devices.Licensing = Licensing(
                    ContainerID="00000000-0000-0000-0000-000000000000", PackageFamilyNames=[]
                )
                devices.Battery = Battery()
                devices.KernelIntegration = KernelIntegration()
            self.grants += [scratch_path, vmgs]
            return scratch, vmgs, devices, self._vmbfs_chipset()
        if kind == "image":
            template = self.paths.join(base, "UtilityVM", "SystemTemplate.vhdx")
            scratch = ScratchPlan(scratch_path, "copy", facts.scratch_size_bytes, template)
            devices = Devices(
                Scsi={
                    _HCSSHIM_SCSI0: Scsi(
                        Attachments={
                            "0": Attachment(Type=AttachmentType.VIRTUAL_DISK, Path=scratch_path)
                        }
                    )
                },
                HvSocket=self._hvsocket(_SDDL_SYSTEM_ADMINS, _SDDL_SYSTEM_ADMINS),
                VirtualSmb=VirtualSmb(
                    Shares=[
                        VirtualSmbShare(
                            Name="os",
                            Path=self._os_files(),
                            # hcsshim create_wcow.go: the os share's options.
                            Options=VirtualSmbShareOptions(
                                ReadOnly=True,
                                ShareRead=True,
                                CacheIo=True,
                                TakeBackupPrivilege=True,
                                PseudoOplocks=True,
                            ),
                        )
                    ],
                    DirectFileMappingInMB=1024,
                ),
            )
            self.grants.append(scratch_path)
            return scratch, None, devices, self._vmbfs_chipset()
        # vhdx: Microsoft's tutorial VM, booting a differencing child of the user's disk.
        # size 0: a differencing disk has its parent's size (CREATE_VIRTUAL_DISK_PARAMETERS:
        # MaximumSize "must be zero" with a ParentPath).
        scratch = ScratchPlan(scratch_path, "differencing", 0, base)
        devices = Devices(
            Scsi={
                _TUTORIAL_SCSI: Scsi(
                    Attachments={
                        "0": Attachment(Type=AttachmentType.VIRTUAL_DISK, Path=scratch_path)
                    }
                )
            },
            HvSocket=self._hvsocket(_SDDL_SYSTEM_ADMINS, _SDDL_SYSTEM_ADMINS),
        )
        # The VM worker opens the parent through the child: it needs access to both
        # (HcsGrantVmAccess.md: every VHDX the worker opens).
        self.grants += [scratch_path, vmgs, base]
        self.warn(
            "vhdx base: the guest must run the Windows guest compute service for start, exec "
            "and stop to work (a plain Windows install may make start wait for it)"
        )
        chipset = Chipset(
            Uefi=Uefi(
                BootThis=UefiBootEntry(
                    DeviceType=UefiBootDevice.SCSI_DRIVE, DevicePath=_TUTORIAL_SCSI, DiskNumber=0
                )
            )
        )
        return scratch, vmgs, devices, chipset

    def _vmbfs_chipset(self) -> Chipset:
        return Chipset(
            Uefi=Uefi(BootThis=UefiBootEntry(DeviceType=UefiBootDevice.VMB_FS, DevicePath=_BOOTMGR))
        )

    def _os_share_wsb(self) -> VirtualSmbShare:
        # Windows Sandbox's `os` share options (§1.3); SupportCloudFiles is 2.3 (older
        # hosts: left out, the share still works without cloud-file support).
        options = VirtualSmbShareOptions(
            ReadOnly=True,
            TakeBackupPrivilege=True,
            NoLocks=True,
            ReparseBaseLayer=True,
            PseudoOplocks=True,
            PseudoDirnotify=True,
        )
        if self.max >= (2, 3):
            options.SupportCloudFiles = True
        return VirtualSmbShare(Name="os", Path=self._os_files(), Options=options)

    def _hvsocket(self, bind: str, connect: str) -> VirtualMachineHvSocket:
        config = HvSocketSystemConfig(
            DefaultBindSecurityDescriptor=bind, DefaultConnectSecurityDescriptor=connect
        )
        if self.wsb:
            user = self.facts.user_sid or _PLACEHOLDER_SID
            table: dict[str, HvSocketServiceConfig] = {}
            for service, b, c, wildcard in _WSB_SERVICE_TABLE:
                table[service] = HvSocketServiceConfig(
                    BindSecurityDescriptor=b.replace("{user}", user),
                    ConnectSecurityDescriptor=c.replace("{user}", user),
                    AllowWildcardBinds=wildcard,
                )
            config.ServiceTable = table
        return VirtualMachineHvSocket(HvSocketConfig=config)

    # -- topology --------------------------------------------------------------------------

    def _topology(self) -> Topology:
        spec = self.spec
        size = _even(spec.memory_mb)
        if size != spec.memory_mb:
            self.warn(
                f"memory {spec.memory_mb} MB is rounded up to {size} MB (HCS wants an even size)"
            )
        memory = VirtualMachineMemory(SizeInMB=size, AllowOvercommit=True, EnableHotHint=True)
        processor = VirtualMachineProcessor(Count=spec.cpus)
        if spec.base.kind == "host":
            # Windows Sandbox's documented memory hints (§1.3): cold hints, deferred commit.
            memory.EnableColdHint = True
            memory.EnableDeferredCommit = True
        if self.wsb:
            user = self.facts.user_sid or _PLACEHOLDER_SID
            memory.AllowOvercommit = None  # WSB says Backing: Virtual instead
            memory.Backing = MemoryBackingType.VIRTUAL
            memory.BackingPageSize = MemoryBackingPageSize.SMALL
            memory.FaultClusterSizeShift = 4
            memory.DirectMapFaultClusterSizeShift = 4
            memory.EnablePrivateCompressionStore = True
            memory.SharedMemoryMB = 2048
            memory.SharedMemoryAccessSids = [user]
            memory.EnableEpf = True
            processor.SynchronizeHostFeatures = True
            processor.EnableSchedulerAssist = True
            processor.DefaultVpCpuPriority = 10
            processor.EnableProcessorIdling = True
        return Topology(Memory=memory, Processor=processor)

    def _guest_connection(self) -> GuestConnection:
        if self.spec.base.kind == "host":
            connection = GuestConnection(UseConnectedSuspend=True)
            if self.wsb:
                connection.UseHostTimeZone = True  # 2.4; the variant requires 2.4
            return connection
        return GuestConnection()

    # -- mapped folders --------------------------------------------------------------------

    def _mapped_folders(self, devices: Devices) -> tuple[GuestLink, ...]:
        links: list[GuestLink] = []
        shares: list[VirtualSmbShare] = []
        for index, folder in enumerate(self.spec.mapped_folders):
            name = f"map{index}"
            if self.paths.foreign(folder.host_path):
                # Not "on this host": ``plan`` plans for a Windows host (HostFacts.
                # for_planning) wherever it runs, a POSIX path included (QA F11).
                self.warn(
                    f"mapped folder {folder.host_path} is "
                    f"{_foreign_path_text(self.facts.path_style)}"
                )
            shares.append(
                VirtualSmbShare(Name=name, Path=folder.host_path, Options=_share_options(folder))
            )
            links.append(
                GuestLink(
                    share=name,
                    host_path=folder.host_path,
                    guest_path=hostpath.normalise_guest_path(folder.guest_path),
                    read_only=folder.read_only,
                    guest_share_path=VSMB_GUEST_PREFIX + name,
                )
            )
        if shares:
            if devices.VirtualSmb is None:
                devices.VirtualSmb = VirtualSmb(Shares=[])
            assert devices.VirtualSmb.Shares is not None
            devices.VirtualSmb.Shares.extend(shares)
            if self.spec.base.kind == "vhdx":
                self.warn(
                    "vhdx base: mapped folders are vSMB shares; whether a stock Windows guest "
                    "can open them is unconfirmed"
                )
        return tuple(links)

    # -- display ---------------------------------------------------------------------------

    def _display(self, devices: Devices) -> tuple[DisplayPipe, ...]:
        if self.spec.display != "desktop":
            return ()
        sid = self.facts.user_sid
        if not sid:
            raise _fail(
                "user_sid",
                None,
                "a desktop sandbox needs the creating user's SID for its display pipes' "
                "access list, and the host facts have none",
                remedy="use --display headless, or run as a user whose SID can be read",
            )
        # NanaBox's naming pattern (M2Team/NanaBox ConfigurationManager.cpp), flattened to one name
        # segment (a backslash inside a pipe name is unconfirmed).
        base = f"\\\\.\\pipe\\hcs-sandbox-{self.facts.system_id}"
        basic = DisplayPipe("basic", base + ".basic", (sid,))
        enhanced = DisplayPipe("enhanced", base + ".enhanced", (sid,))
        devices.VideoMonitor = VideoMonitor(
            HorizontalResolution=1024,
            VerticalResolution=768,
            ConnectionOptions=RdpConnectionOptions(AccessSids=[sid], NamedPipe=basic.pipe),
        )
        devices.EnhancedModeVideo = EnhancedModeVideo(
            ConnectionOptions=RdpConnectionOptions(AccessSids=[sid], NamedPipe=enhanced.pipe)
        )
        devices.Keyboard = Keyboard()
        devices.Mouse = Mouse()
        self.warn(
            f"desktop display is on: processes running as {sid} can connect to the sandbox's "
            "display pipes (unencrypted RDP) and see and control its desktop",
            "display",
        )
        return (basic, enhanced)

    def _session(self) -> SessionOptions:
        spec = self.spec
        session = SessionOptions(
            clipboard=spec.clipboard,
            audio_input=spec.audio_input,
            video_input=spec.video_input,
            printer=spec.printer,
            protected_client=spec.protected_client,
        )
        asked = [k for k, v in session.to_dict().items() if v]
        if asked and spec.display != "desktop":
            self.warn(
                f"{', '.join(asked)} only apply to a desktop viewer and have no effect on a "
                "headless sandbox"
            )
        return session

    # -- GPU -------------------------------------------------------------------------------

    def _gpu(self) -> dict[str, Any] | None:
        if not self.spec.gpu:
            return None
        self.warn(
            "experimental: GPU-PV is applied after start (HcsModifyComputeSystem "
            f"{GPU_RESOURCE_PATH}); the guest also needs the host's GPU driver files, "
            "which hcs-sandbox does not share yet"
        )
        # GpuConfiguration (SchemaReference.md): Mirror = "all current and future GPUs";
        # NanaBox / App Sandbox send AllowVendorExtension true (ConfigurationManager.cpp, hcs_vm.c).
        return {
            "ResourcePath": GPU_RESOURCE_PATH,
            "RequestType": "Update",
            "Settings": {"AssignmentMode": "Mirror", "AllowVendorExtension": True},
        }

    # -- network ---------------------------------------------------------------------------

    def _network(
        self, devices: Devices
    ) -> tuple[HostComputeNetwork | None, HostComputeEndpoint | None]:
        spec, facts = self.spec, self.facts
        if spec.network == "none":
            return None, None
        if not facts.endpoint_id:
            raise _fail(
                "endpoint_id",
                None,
                "a networked sandbox needs an endpoint id in the host facts",
                remedy="this is a bug in the caller of plan(): pass endpoint_id",
            )
        network = HostComputeNetwork(
            ID=facts.network_id,
            Owner=OWNER,
            Name=NAT_NETWORK_NAME,
            Type=NetworkType.NAT,
            # EnableDhcpServer so guests without an agent get their address (multipass does so;
            # a NAT endpoint's static IP must otherwise be set in the guest: hcsshim
            # internal/uvm/network.go sets it through its guest agent);
            # EnableDnsProxy so the gateway answers DNS.  Flag values: hcsshim / multipass.
            Flags=int(NetworkFlags.ENABLE_DNS_PROXY | NetworkFlags.ENABLE_DHCP_SERVER),
            MacPool=MacPool(
                Ranges=[MacRange(StartMacAddress=MAC_POOL[0], EndMacAddress=MAC_POOL[1])]
            ),
            Ipams=[
                Ipam(
                    Type=IpamType.STATIC,
                    Subnets=[
                        Subnet(
                            IpAddressPrefix=facts.nat_subnet,
                            Routes=[
                                Route(NextHop=facts.nat_gateway, DestinationPrefix="0.0.0.0/0")
                            ],
                        )
                    ],
                )
            ],
            SchemaVersion=Version.of(HCN_DEFAULT_SCHEMA),
        )
        policies: list[EndpointPolicy] = [
            port_mapping_policy(p.host_port, p.guest_port, p.protocol) for p in spec.ports
        ]
        if spec.network == "internet-only":
            policies.extend(self._internet_only_acls())
        endpoint = HostComputeEndpoint(
            ID=facts.endpoint_id,
            Name=f"{ENDPOINT_NAME_PREFIX}{facts.sandbox_id}",
            HostComputeNetwork=facts.network_id,
            Policies=policies or None,
            MacAddress=facts.mac_address,
            SchemaVersion=Version.of(HCN_DEFAULT_SCHEMA),
        )
        if spec.network == "internet-only":
            if facts.hcn_schema_version is None:
                self.warn(
                    "experimental: internet-only uses HCN ACL policies; this host's HCN "
                    "version is unknown, so whether it accepts them is unchecked"
                )
            else:
                too_new = fields_newer_than(endpoint, facts.hcn_schema_version)
                if too_new:
                    raise _fail(
                        "network",
                        spec.network,
                        f"network 'internet-only' needs HCN schema "
                        f"{_version_text(_HCN_ACL_SCHEMA)} (ACL ports and protocols) but "
                        f"this host's HCN speaks {_version_text(facts.hcn_schema_version)}",
                        remedy="use --network nat (it can reach your LAN) or none",
                    )
                self.warn(
                    "experimental: internet-only blocks private addresses with HCN ACL "
                    "policies; confirm with 'hcs-sandbox doctor --deep' on this host"
                )
        self.warn(
            f"experimental: the shared NAT network {NAT_NETWORK_NAME} serves DHCP to guests "
            "(EnableDhcpServer), unconfirmed for NAT networks"
        )
        # multipass (hyperv_hcs_api_wrapper.cpp) and hcsshim (internal/uvm/network.go) put
        # EndpointId + MacAddress in the adapter; the
        # 2.4 InstanceId is left out so networking works on 2.1 hosts.  The map key is the
        # adapter id (hcsshim: a fresh GUID per adapter, internal/uvm/network.go).  The MAC
        # is the one HNS assigns to the endpoint (hcsshim creates endpoints without one and
        # copies endpoint.MacAddress into the adapter): left out here unless the facts ask
        # for one; Plan.with_adapter_mac fills it in once the endpoint exists.
        adapter = NetworkAdapter(EndpointId=facts.endpoint_id, MacAddress=facts.mac_address)
        devices.NetworkAdapters = {facts.adapter_id or facts.endpoint_id: adapter}
        return network, endpoint

    def _internet_only_acls(self) -> list[EndpointPolicy]:
        """HCN ACL rules (HNS_Schema.md#AclPolicySetting; lower Priority wins — UNCONFIRMED).

        1. allow DNS (UDP/TCP 53) and DHCP (UDP 67) to the gateway / broadcast;
        2. allow inbound to each published guest port (:func:`inbound_port_acl`, which
           :mod:`hcs_sandbox.sandbox.ports` uses for runtime ports too);
        3. block outbound to private, link-local and shared address space;
        4. allow all other outbound traffic.
        """
        gateway = self.facts.nat_gateway
        allow_dns_dhcp: list[AclPolicySetting] = [
            AclPolicySetting(
                Id="hcs-sandbox-allow-dns-dhcp-udp",
                Action=AclAction.ALLOW,
                Direction=AclDirection.OUT,
                Protocols=str(PROTOCOL_UDP),
                RemoteAddresses=f"{gateway},255.255.255.255",
                RemotePorts="53,67",
                Priority=100,
                RuleType=AclRuleType.SWITCH,
            ),
            AclPolicySetting(
                Id="hcs-sandbox-allow-dns-tcp",
                Action=AclAction.ALLOW,
                Direction=AclDirection.OUT,
                Protocols=str(PROTOCOL_TCP),
                RemoteAddresses=gateway,
                RemotePorts="53",
                Priority=100,
                RuleType=AclRuleType.SWITCH,
            ),
        ]
        block_then_allow_out: list[AclPolicySetting] = [
            AclPolicySetting(
                Id="hcs-sandbox-block-private",
                Action=AclAction.BLOCK,
                Direction=AclDirection.OUT,
                RemoteAddresses=_PRIVATE_RANGES,
                Priority=200,
                RuleType=AclRuleType.SWITCH,
            ),
            AclPolicySetting(
                Id="hcs-sandbox-allow-out",
                Action=AclAction.ALLOW,
                Direction=AclDirection.OUT,
                Priority=1000,
                RuleType=AclRuleType.SWITCH,
            ),
        ]
        return [
            *(EndpointPolicy.acl(rule) for rule in allow_dns_dhcp),
            # One rule per (guest port, protocol): '-p 8080:80 -p 8081:80' opens port 80 once
            # (two rules would share an Id; whether HNS accepts that is unknown).
            *(
                inbound_port_acl(guest_port, protocol)
                for guest_port, protocol in dict.fromkeys(
                    (port.guest_port, port.protocol) for port in self.spec.ports
                )
            ),
            *(EndpointPolicy.acl(rule) for rule in block_then_allow_out),
        ]


# --------------------------------------------------------------------------------------
# Published-port policies: ONE builder for the planner's endpoint document (spec ports, at
# create) and for hcs_sandbox.sandbox.ports (runtime ports, HcnModifyEndpoint), so the two
# cannot drift apart.
# --------------------------------------------------------------------------------------

#: ``PortMapping`` ``Protocol`` / ACL ``Protocols``: IANA protocol numbers, as hcsshim sends
#: them (``hcn/hcnpolicy.go``; HNS_Schema.md#PortMappingPolicySetting).
_PROTOCOL_NUMBERS: dict[str, int] = {"tcp": PROTOCOL_TCP, "udp": PROTOCOL_UDP}
#: The inbound allow rule of a published guest port sits between the DNS/DHCP allows (100)
#: and the private-range block (200): see :meth:`_Planner._internet_only_acls`.
_INBOUND_PORT_PRIORITY = 150


def _protocol_number(protocol: str) -> int:
    try:
        return _PROTOCOL_NUMBERS[protocol]
    except KeyError:
        raise _fail("protocol", protocol, f"protocol {protocol!r} is not tcp or udp") from None


def port_mapping_policy(host_port: int, guest_port: int, protocol: str) -> EndpointPolicy:
    """The ``PortMapping`` endpoint policy forwarding ``host_port`` to ``guest_port``
    (``protocol`` ``"tcp"`` or ``"udp"``): ``{"Type": "PortMapping", "Settings":
    {"Protocol": 6|17, "InternalPort": guest, "ExternalPort": host}}``
    (HNS_Schema.md#PortMappingPolicySetting)."""
    return EndpointPolicy.port_mapping(
        internal_port=guest_port,
        external_port=host_port,
        protocol=_protocol_number(protocol),
    )


def inbound_port_acl(guest_port: int, protocol: str) -> EndpointPolicy:
    """The ACL rule an ``internet-only`` endpoint needs so a published ``guest_port`` can be
    reached: ``hcs-sandbox-allow-in-<protocol>-<guest_port>``, allow in, Priority 150,
    ``RuleType`` Switch (HNS_Schema.md#AclPolicySetting)."""
    return EndpointPolicy.acl(
        AclPolicySetting(
            Id=f"hcs-sandbox-allow-in-{protocol}-{guest_port}",
            Action=AclAction.ALLOW,
            Direction=AclDirection.IN,
            Protocols=str(_protocol_number(protocol)),
            LocalPorts=str(guest_port),
            Priority=_INBOUND_PORT_PRIORITY,
            RuleType=AclRuleType.SWITCH,
        )
    )


def _share_options(folder: MappedFolder) -> VirtualSmbShareOptions:
    """hcsshim's vSMB options (``internal/uvm/vsmb.go`` ``DefaultVSMBOptions``): a read-only
    share gets ReadOnly + ShareRead + CacheIo + PseudoOplocks; a read-write share gets none
    of them (hcsshim sets only ``NoDirectmap`` when memory is physically backed, and
    sandboxes use overcommitted, virtually backed memory), so ``Options`` is ``{}``."""
    if folder.read_only:
        return VirtualSmbShareOptions(
            ReadOnly=True, ShareRead=True, CacheIo=True, PseudoOplocks=True
        )
    return VirtualSmbShareOptions()
