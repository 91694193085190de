"""HCN (computenetwork.dll) documents: networks, endpoints, policies, queries.

Sources: MicrosoftDocs/Virtualization-Documentation ``virtualization/api/hcn/HNS_Schema.md``
(cited "HNS_Schema.md#<Type>"; its "NewInVersion" numbers are **HCN** schema versions,
2.0 … 2.14, not HCS ones) and hcsshim ``hcn/hcnnetwork.go``, ``hcn/hcnendpoint.go``,
``hcn/hcnpolicy.go``, ``hcn/hcn.go``.  Where the two disagree on a JSON type, the model
follows hcsshim, which talks to real hosts (integer ``Flags`` bitmasks, integer
``PortMappingPolicySetting.Protocol``); see docs/windows-notes.md#schema.
A blank "NewInVersion" in HNS_Schema.md is recorded as ``since=None``.
"""

# schema_field() returns dataclasses.field(default=None, ...): an immutable default.
# ruff: noqa: RUF009

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hcs_sandbox.schema._base import SchemaModel, VersionTuple, schema_field
from hcs_sandbox.schema.compute import Version
from hcs_sandbox.schema.enums import (
    AclAction,
    AclDirection,
    AclRuleType,
    EndpointPolicyType,
    IpamType,
    NetworkPolicyType,
    NetworkType,
)

__all__ = [
    "HCN_DEFAULT_SCHEMA",
    "PROTOCOL_TCP",
    "PROTOCOL_UDP",
    "AclPolicySetting",
    "Dns",
    "EndpointPolicy",
    "HostComputeEndpoint",
    "HostComputeNetwork",
    "HostComputeQuery",
    "IpConfig",
    "Ipam",
    "MacPool",
    "MacRange",
    "NetworkPolicy",
    "OutboundNatPolicySetting",
    "PortMappingPolicySetting",
    "Route",
    "Subnet",
    "SubnetPolicy",
]

# hcsshim hcn/hcn.go defaultQuery() and its tests use schema 2.0 for HCN documents.
HCN_DEFAULT_SCHEMA: VersionTuple = (2, 0)

# IANA protocol numbers as hcsshim sends them in PortMappingPolicySetting.Protocol.
PROTOCOL_TCP = 6
PROTOCOL_UDP = 17


class _Hcn(SchemaModel):
    NAMESPACE = "hcn"


@dataclass(kw_only=True)
class Route(_Hcn):
    """HNS_Schema.md#Route."""

    SOURCE = "HNS_Schema.md#Route; hcsshim hcn/hcnnetwork.go"

    NextHop: str | None = schema_field("NextHop")
    DestinationPrefix: str | None = schema_field("DestinationPrefix")
    Metric: int | None = schema_field("Metric")


@dataclass(kw_only=True)
class SubnetPolicy(_Hcn):
    """HNS_Schema.md#SubnetPolicy (VLAN / VSID isolation)."""

    SOURCE = "HNS_Schema.md#SubnetPolicy; hcsshim hcn/hcnpolicy.go"

    Type: str | None = schema_field("Type")
    Settings: Any = schema_field("Settings")


@dataclass(kw_only=True)
class Subnet(_Hcn):
    """HNS_Schema.md#Subnet (only the fields a sandbox network uses)."""

    SOURCE = "HNS_Schema.md#Subnet; hcsshim hcn/hcnnetwork.go"

    IpAddressPrefix: str | None = schema_field("IpAddressPrefix")
    Policies: list[SubnetPolicy] | None = schema_field("Policies")
    Routes: list[Route] | None = schema_field("Routes")
    Flags: int | None = schema_field("Flags", since=(2, 7))


@dataclass(kw_only=True)
class Ipam(_Hcn):
    """HNS_Schema.md#Ipam: an address space of a network."""

    SOURCE = "HNS_Schema.md#Ipam; hcsshim hcn/hcnnetwork.go"

    Type: IpamType | str | None = schema_field("Type")
    Subnets: list[Subnet] | None = schema_field("Subnets")


@dataclass(kw_only=True)
class MacRange(_Hcn):
    """HNS_Schema.md#MacRange (``"00-15-5D-52-C0-00"`` form)."""

    SOURCE = "HNS_Schema.md#MacRange; hcsshim hcn/hcnnetwork.go"

    StartMacAddress: str | None = schema_field("StartMacAddress")
    EndMacAddress: str | None = schema_field("EndMacAddress")


@dataclass(kw_only=True)
class MacPool(_Hcn):
    """HNS_Schema.md#MacPool."""

    SOURCE = "HNS_Schema.md#MacPool; hcsshim hcn/hcnnetwork.go"

    Ranges: list[MacRange] | None = schema_field("Ranges")


@dataclass(kw_only=True)
class Dns(_Hcn):
    """HNS_Schema.md#DNS (JSON key ``Dns`` on networks and endpoints).

    ``Suffix`` is what older hcsshim sends instead of the documented ``Domain``.
    """

    SCHEMA_NAME = "DNS"
    SOURCE = "HNS_Schema.md#DNS; hcsshim hcn/hcnnetwork.go"

    Domain: str | None = schema_field("Domain")
    Suffix: str | None = schema_field(
        "Suffix", since=None, documented=False, source="hcsshim hcn/hcnnetwork.go (Dns.Suffix)"
    )
    Search: list[str] | None = schema_field("Search")
    ServerList: list[str] | None = schema_field("ServerList")
    Options: list[str] | None = schema_field("Options")


@dataclass(kw_only=True)
class NetworkPolicy(_Hcn):
    """HNS_Schema.md#NetworkPolicy: ``{Type, Settings}``."""

    SOURCE = "HNS_Schema.md#NetworkPolicy; hcsshim hcn/hcnpolicy.go"

    Type: NetworkPolicyType | str | None = schema_field("Type")
    Settings: Any = schema_field("Settings")


@dataclass(kw_only=True)
class PortMappingPolicySetting(_Hcn):
    """HNS_Schema.md#PortMappingPolicySetting (NAT port forward).

    ``Protocol`` is an IANA number (6 TCP, 17 UDP) as hcsshim sends it; HNS_Schema.md
    types it as the ProtocolType enum.
    """

    SOURCE = "HNS_Schema.md#PortMappingPolicySetting; hcsshim hcn/hcnpolicy.go"

    Protocol: int | None = schema_field("Protocol")
    InternalPort: int | None = schema_field("InternalPort")
    ExternalPort: int | None = schema_field("ExternalPort")
    VIP: str | None = schema_field("VIP")
    Flags: int | None = schema_field("Flags", since=None)


@dataclass(kw_only=True)
class AclPolicySetting(_Hcn):
    """HNS_Schema.md#AclPolicySetting (firewall rule on an endpoint).

    ``Protocols``, ports and addresses are strings ("6", "80,443", "10.0.0.0/8").
    """

    SOURCE = "HNS_Schema.md#AclPolicySetting; hcsshim hcn/hcnpolicy.go"

    Protocols: str | None = schema_field("Protocols", since=(2, 5))
    LocalAddresses: str | None = schema_field("LocalAddresses", since=(2, 5))
    RemoteAddresses: str | None = schema_field("RemoteAddresses", since=(2, 5))
    LocalPorts: str | None = schema_field("LocalPorts", since=(2, 5))
    RemotePorts: str | None = schema_field("RemotePorts", since=(2, 5))
    Priority: int | None = schema_field("Priority", since=(2, 5))
    Id: str | None = schema_field("Id", since=None)
    Action: AclAction | str | None = schema_field("Action", since=None)
    Direction: AclDirection | str | None = schema_field("Direction", since=None)
    RuleType: AclRuleType | str | None = schema_field("RuleType")


@dataclass(kw_only=True)
class OutboundNatPolicySetting(_Hcn):
    """HNS_Schema.md#OutboundNatPolicySetting."""

    SOURCE = "HNS_Schema.md#OutboundNatPolicySetting; hcsshim hcn/hcnpolicy.go"

    VirtualIP: str | None = schema_field("VirtualIP")
    Destinations: list[str] | None = schema_field("Destinations")
    Exceptions: list[str] | None = schema_field("Exceptions")
    Flags: int | None = schema_field("Flags", since=None)


@dataclass(kw_only=True)
class EndpointPolicy(_Hcn):
    """HNS_Schema.md#EndpointPolicy: ``{Type, Settings}``; Settings is a JSON object."""

    SOURCE = "HNS_Schema.md#EndpointPolicy; hcsshim hcn/hcnpolicy.go"

    Type: EndpointPolicyType | str | None = schema_field("Type")
    Settings: Any = schema_field("Settings")

    @classmethod
    def port_mapping(
        cls,
        *,
        internal_port: int,
        external_port: int,
        protocol: int = PROTOCOL_TCP,
        vip: str | None = None,
    ) -> EndpointPolicy:
        """A PortMapping policy (host ``external_port`` → guest ``internal_port``)."""
        return cls(
            Type=EndpointPolicyType.PORT_MAPPING,
            Settings=PortMappingPolicySetting(
                Protocol=protocol, InternalPort=internal_port, ExternalPort=external_port, VIP=vip
            ),
        )

    @classmethod
    def acl(cls, setting: AclPolicySetting) -> EndpointPolicy:
        """An ACL policy."""
        return cls(Type=EndpointPolicyType.ACL, Settings=setting)


@dataclass(kw_only=True)
class IpConfig(_Hcn):
    """HNS_Schema.md#IpConfig."""

    SOURCE = "HNS_Schema.md#IpConfig; hcsshim hcn/hcnendpoint.go"

    IpAddress: str | None = schema_field("IpAddress")
    PrefixLength: int | None = schema_field("PrefixLength")
    IpSubnetId: str | None = schema_field("IpSubnetId", since=(2, 3))


@dataclass(kw_only=True)
class HostComputeNetwork(_Hcn):
    """HNS_Schema.md#HostComputeNetwork (``HcnCreateNetwork``); JSON id key is ``ID``.

    ``Flags`` is an integer bitmask (:class:`~hcs_sandbox.schema.enums.NetworkFlags`).
    """

    SOURCE = "HNS_Schema.md#HostComputeNetwork; hcsshim hcn/hcnnetwork.go"

    ID: str | None = schema_field("ID")
    Owner: str | None = schema_field("Owner")
    Name: str | None = schema_field("Name")
    Type: NetworkType | str | None = schema_field("Type")
    Policies: list[NetworkPolicy] | None = schema_field("Policies")
    MacPool: MacPool | None = schema_field("MacPool")
    Dns: Dns | None = schema_field("Dns")
    Ipams: list[Ipam] | None = schema_field("Ipams")
    Flags: int | None = schema_field("Flags")
    SchemaVersion: Version | None = schema_field("SchemaVersion")


@dataclass(kw_only=True)
class HostComputeEndpoint(_Hcn):
    """HNS_Schema.md#HostComputeEndpoint (``HcnCreateEndpoint``).

    ``HostComputeNamespace`` is read-only at creation (hcsshim never sends it).
    ``Flags``: :class:`~hcs_sandbox.schema.enums.EndpointFlags`.
    """

    SOURCE = "HNS_Schema.md#HostComputeEndpoint; hcsshim hcn/hcnendpoint.go"

    ID: str | None = schema_field("ID")
    Owner: str | None = schema_field("Owner")
    Name: str | None = schema_field("Name")
    HostComputeNetwork: str | None = schema_field("HostComputeNetwork")
    HostComputeNamespace: str | None = schema_field("HostComputeNamespace")
    Policies: list[EndpointPolicy] | None = schema_field("Policies")
    IpConfigurations: list[IpConfig] | None = schema_field("IpConfigurations")
    Dns: Dns | None = schema_field("Dns")
    Routes: list[Route] | None = schema_field("Routes")
    MacAddress: str | None = schema_field("MacAddress")
    Flags: int | None = schema_field("Flags")
    SchemaVersion: Version | None = schema_field("SchemaVersion")


@dataclass(kw_only=True)
class HostComputeQuery(_Hcn):
    """HNS_Schema.md#HostComputeQuery: for ``HcnEnumerate*`` / ``HcnQuery*Properties``.

    ``Flags``: 0 = None, 1 = Detailed (hcsshim).  ``Filter`` is a JSON *string*.
    """

    SOURCE = "HNS_Schema.md#HostComputeQuery; hcsshim hcn/hcn.go"

    SchemaVersion: Version | None = schema_field("SchemaVersion")
    Flags: int | None = schema_field("Flags", since=None)
    Filter: str | None = schema_field("Filter")

    @classmethod
    def create(
        cls,
        filter: Mapping[str, Any] | None = None,
        *,
        detailed: bool = False,
        schema: VersionTuple = HCN_DEFAULT_SCHEMA,
    ) -> HostComputeQuery:
        """A query; ``filter`` (e.g. ``{"Name": "x"}``) is serialised into ``Filter``."""
        return cls(
            SchemaVersion=Version.of(schema),
            Flags=1 if detailed else 0,
            Filter=json.dumps(dict(filter)) if filter is not None else None,
        )
