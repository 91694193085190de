"""Networking plumbing for sandboxes: the shared NAT network and one endpoint per sandbox.

``network="none"``: no adapter at all (the planner emits no ``NetworkAdapters``).
``network="nat"``: one HCN NAT network, shared by every hcs-sandbox sandbox, made on first use
and reused (:func:`ensure_network`); each sandbox gets its own HCN endpoint on it
(:func:`create_endpoint`), attached in the compute-system document as a
``NetworkAdapter`` and deleted on remove (and by ``prune`` when its record is gone).
Port forwards are ``PortMapping`` endpoint policies, in the planner's endpoint document at
create and added/removed later with :func:`modify_endpoint_policies`
(:mod:`hcs_sandbox.sandbox.ports`).

Race safety across processes: the network has a fixed id (the planner's), so two processes
that both find it missing both try ``HcnCreateNetwork``; the loser gets
``HCN_E_NETWORK_ALREADY_EXISTS`` (0x803B0010, HCNHResult.md) and
opens the winner's network instead.

Endpoints persist in HNS after ``HcnCloseEndpoint`` and are not deleted when the VM exits
(**UNCONFIRMED**, so always deleted explicitly, as multipass does:
``hcs_virtual_machine.cpp``); ``HCN_E_ENDPOINT_NOT_FOUND`` on delete counts as done.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from hcs_sandbox import errors

# Endpoints are named ``hcs-sandbox-<sandbox id>`` by the planner, so prune can tell them
# from endpoints other tools own on the same host.
from hcs_sandbox.sandbox.planner import ENDPOINT_NAME_PREFIX

__all__ = [
    "ENDPOINT_NAME_PREFIX",
    "EndpointInfo",
    "create_endpoint",
    "delete_endpoint",
    "endpoint_info",
    "endpoint_policies",
    "ensure_network",
    "list_endpoints",
    "modify_endpoint_policies",
    "port_conflict",
]

_log = logging.getLogger("hcs_sandbox.sandbox")


@dataclasses.dataclass(frozen=True)
class EndpointInfo:
    """What HNS reports about an endpoint: its id, MAC and IP (``HostComputeEndpoint``
    ``ID``, ``MacAddress``, ``IpConfigurations[].IpAddress``: HNS_Schema.md)."""

    id: str
    mac: str | None = None
    ip: str | None = None
    network_id: str | None = None
    name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _doc_id(document: Mapping[str, Any], what: str) -> str:
    value = document.get("ID") or document.get("Id")
    if not isinstance(value, str) or not value:
        raise errors.SpecError(f"the {what} document has no ID", field="ID")
    return value


def ensure_network(document: Mapping[str, Any]) -> str:
    """Open the shared network, creating it from ``document`` (a ``HostComputeNetwork``
    with a fixed ``ID``) when it does not exist. Returns its id."""
    from hcs_sandbox.hcs import network as hcn

    network_id = _doc_id(document, "network")
    try:
        with hcn.Network.open(network_id):
            return network_id
    except errors.NotFoundError:
        pass
    try:
        with hcn.Network.create(network_id, dict(document)):
            _log.info("created the shared NAT network %s", network_id)
    except errors.AlreadyExistsError as exists:
        # Another process created it between our open and our create: use theirs.
        try:
            with hcn.Network.open(network_id):
                pass
        except errors.NotFoundError:
            clash = _name_clash(document, network_id, exists)
            if clash is None:
                raise
            raise clash from exists
    return network_id


#: learn.microsoft.com "HostNetworkingService Module" (Get-HnsNetwork; Remove-HnsNetwork
#: takes the networks from the pipeline, ``-InputObjects``).
_REMOVE_NETWORK_BY_NAME = "Get-HnsNetwork | Where-Object Name -eq '{name}' | Remove-HnsNetwork"


def _name_clash(
    document: Mapping[str, Any], network_id: str, exists: errors.AlreadyExistsError
) -> errors.HcsError | None:
    """The error for a create refused with ALREADY_EXISTS although no network has our id:
    HCNHResult.md defines HCN_E_NETWORK_ALREADY_EXISTS as "A network with this name already
    exists", so another network holds our name.  Retrying cannot help; the user must remove
    that network.  None when no other network has the name (then the one with our id was
    deleted in between, and the caller's NOT_FOUND stands)."""
    from hcs_sandbox.hcs import network as hcn

    name = document.get("Name")
    if not isinstance(name, str) or not name:
        return None
    query = dict(hcn.DEFAULT_QUERY, Filter=json.dumps({"Name": name}))
    try:  # the same query as hcsshim hcn/hcnnetwork.go GetNetworkByName
        others = [i for i in hcn.enumerate_networks(query) if i.lower() != network_id.lower()]
    except errors.HcsError:
        others = []
    if not others:
        return None
    return exists.restated(
        f"an HCN network named {name} exists with another id ({', '.join(others)}), "
        f"so the shared network {network_id} cannot be created",
        remedy="remove it (elevated PowerShell): "
        + _REMOVE_NETWORK_BY_NAME.format(name=name.replace("'", "''")),
    )


def create_endpoint(
    network_id: str,
    document: Mapping[str, Any],
    *,
    port_holder: Callable[[int, str], str | None] | None = None,
) -> EndpointInfo:
    """Create the sandbox's endpoint (``HcnCreateEndpoint``) on the network and read back
    its MAC and IP (``HcnQueryEndpointProperties``). On failure after the endpoint exists
    it is deleted again.

    ``HCN_E_PORT_ALREADY_EXISTS`` becomes one error naming the taken host port and its
    holder (:func:`port_conflict`): HCN does not say which of the document's ports it is,
    so ``port_holder(host_port, protocol)`` (the name of another of our sandboxes that
    publishes it, or None) is asked about each, as ``port NAME -p`` finds the holder, and
    every one held is named with its holder; with no holder among ours, a single port is
    named as it is, several all together.

    The planner's document has no ``MacAddress``: HNS assigns a free one from the network's
    ``MacPool``, and the caller puts the returned :attr:`EndpointInfo.mac` in the compute
    system's adapter (``Plan.with_adapter_mac``; hcsshim ``internal/uvm/network.go``
    ``addNIC``)."""
    from hcs_sandbox.hcs import network as hcn

    endpoint_id = _doc_id(document, "endpoint")
    try:
        with (
            hcn.Network.open(network_id) as net,
            hcn.Endpoint.create(net, endpoint_id, dict(document)) as ep,
        ):
            try:
                props = ep.query()
            except BaseException:
                _delete_quietly(endpoint_id)
                raise
    except errors.HcnAlreadyExistsError as exc:
        if exc.name == PORT_ALREADY_EXISTS:
            held = _held_ports(document, port_holder)
            if len(held) > 1:  # (review RV-names L1: every one, in the one line)
                raise _ports_conflict(exc, held, "creating the network endpoint") from exc
            port, owner = held[0] if held else (_unheld_ports(document), None)
            # (The holder may publish it from its spec, where it cannot be unpublished: say
            # where it is, as the start's re-apply does, not which command frees it.)
            remedy = (
                f"publish a different host port ({port} is taken), or free it in sandbox "
                f"'{owner}' first"
                if owner
                else None
            )
            raise port_conflict(
                exc, port, "creating the network endpoint", owner=owner, remedy=remedy
            ) from exc
        raise
    return _info_from(endpoint_id, props)


def _published(document: Mapping[str, Any]) -> list[tuple[int, str]]:
    """The ``(host port, "tcp"|"udp")`` of each ``PortMapping`` policy in an endpoint
    document (the planner's: ``port_mapping_policy``, HNS_Schema.md#PortMappingPolicySetting)."""
    from hcs_sandbox.schema.network import PROTOCOL_UDP

    found: list[tuple[int, str]] = []
    for policy in document.get("Policies") or ():
        if not isinstance(policy, Mapping) or policy.get("Type") != "PortMapping":
            continue
        settings = policy.get("Settings")
        if isinstance(settings, Mapping) and type(settings.get("ExternalPort")) is int:
            protocol = "udp" if settings.get("Protocol") == PROTOCOL_UDP else "tcp"
            found.append((settings["ExternalPort"], protocol))
    return found


def _held_ports(
    document: Mapping[str, Any], holder: Callable[[int, str], str | None] | None
) -> list[tuple[str, str]]:
    """``(port text, holder name)`` of each of ``document``'s ports another of our sandboxes
    holds, after ``HcnCreateEndpoint`` refused it with ``HCN_E_PORT_ALREADY_EXISTS``."""
    held: list[tuple[str, str]] = []
    if holder is None:
        return held
    for host_port, protocol in _published(document):
        try:
            owner = holder(host_port, protocol)
        except errors.HcsSandboxError:  # (the store unreadable: say less, not fail)
            owner = None
        if owner:
            held.append((f"{host_port}/{protocol}", owner))
    return held


def _unheld_ports(document: Mapping[str, Any]) -> str | None:
    """No sandbox of ours holds any of ``document``'s ports (another program's endpoint):
    the one port, or all of them ("7171/tcp or 7272/tcp"); None when it has none."""
    published = _published(document)
    return " or ".join(f"{h}/{p}" for h, p in published) or None


def _and(items: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _ports_conflict(
    exc: errors.HcsError, held: list[tuple[str, str]], doing: str
) -> errors.HcnAlreadyExistsError:
    """:func:`port_conflict` for several taken ports, each with its holder, in one line:
    ``host ports 7171/tcp and 7272/tcp are already published on this host (by sandbox
    'pa')``, or ``host ports 7171/tcp (by sandbox 'pa') and 7272/tcp (by sandbox 'pb') are
    ...`` when they differ."""
    owners = list(dict.fromkeys(owner for _port, owner in held))
    ports = [port for port, _owner in held]
    if len(owners) == 1:
        which = f"host ports {_and(ports)} are already published on this host"
        which += f" (by sandbox '{owners[0]}')"
    else:
        which = "host ports " + _and([f"{p} (by sandbox '{o}')" for p, o in held])
        which += " are already published on this host"
    where = _and([f"'{o}'" for o in owners])
    return errors.HcnAlreadyExistsError(
        f"{doing}: {which} — {exc.name} (0x{exc.hresult:08X})",
        hresult=exc.hresult,
        function=exc.function,
        result_error=exc.result_error,
        remedy=f"publish different host ports ({_and(ports)} are taken), or free them in "
        f"sandbox{'es' if len(owners) > 1 else ''} {where} first",
    )


def endpoint_info(endpoint_id: str) -> EndpointInfo | None:
    """The endpoint's MAC/IP, or None when it no longer exists."""
    from hcs_sandbox.hcs import network as hcn

    try:
        with hcn.Endpoint.open(endpoint_id) as ep:
            props = ep.query()
    except errors.NotFoundError:
        return None
    return _info_from(endpoint_id, props)


def _info_from(endpoint_id: str, props: Mapping[str, Any] | None) -> EndpointInfo:
    props = props or {}
    ip: str | None = None
    for config in props.get("IpConfigurations") or ():
        if isinstance(config, Mapping) and config.get("IpAddress"):
            ip = str(config["IpAddress"])
            break
    mac = props.get("MacAddress")
    net = props.get("HostComputeNetwork")
    name = props.get("Name")
    return EndpointInfo(
        id=endpoint_id,
        mac=str(mac) if mac else None,
        ip=ip,
        network_id=str(net) if net else None,
        name=str(name) if name else None,
    )


def delete_endpoint(endpoint_id: str) -> bool:
    """``HcnDeleteEndpoint``; True when it was deleted, False when it was already gone."""
    from hcs_sandbox.hcs import network as hcn

    try:
        hcn.delete_endpoint(endpoint_id)
    except errors.NotFoundError:
        return False
    return True


def _delete_quietly(endpoint_id: str) -> None:
    try:
        delete_endpoint(endpoint_id)
    except Exception as exc:
        _log.warning("could not delete endpoint %s: %s", endpoint_id, exc)


def list_endpoints(network_id: str | None = None) -> list[EndpointInfo]:
    """Every endpoint named ``hcs-sandbox-*`` (optionally only on ``network_id``)."""
    from hcs_sandbox.hcs import network as hcn

    found: list[EndpointInfo] = []
    for endpoint_id in hcn.enumerate_endpoints(None):
        info = endpoint_info(endpoint_id)
        if info is None:
            continue
        if not (info.name or "").startswith(ENDPOINT_NAME_PREFIX):
            continue
        if network_id and info.network_id and info.network_id.lower() != network_id.lower():
            continue
        found.append(info)
    return found


#: HCNHResult.md: 0x803B0013, a host port is already mapped (by any endpoint on the host).
PORT_ALREADY_EXISTS = "HCN_E_PORT_ALREADY_EXISTS"


def port_conflict(
    exc: errors.HcsError,
    port: str | None,
    doing: str,
    *,
    owner: str | None = None,
    remedy: str | None = None,
) -> errors.HcnAlreadyExistsError:
    """One clear error for ``HCN_E_PORT_ALREADY_EXISTS`` (``port`` like ``"8080/tcp"``);
    ``remedy`` replaces the default one ("publish a different host port")."""
    which = f"host port {port}" if port else "a host port of this sandbox"
    by = f"sandbox '{owner}'" if owner else "another sandbox or program"
    return errors.HcnAlreadyExistsError(
        f"{doing}: {which} is already published on this host (by {by}) — "
        f"{exc.name} (0x{exc.hresult:08X})",
        hresult=exc.hresult,
        function=exc.function,
        result_error=exc.result_error,
        remedy=remedy
        or "publish a different host port"
        + (f" ({port} is taken)" if port else "")
        + (f", or unpublish it from '{owner}' first" if owner else ""),
    )


def modify_endpoint_policies(
    endpoint_id: str, request_type: str, policies: list[dict[str, Any]]
) -> None:
    """Add or remove endpoint policies at run time: ``HcnOpenEndpoint`` +
    ``HcnModifyEndpoint`` with hcsshim's ``ModifyEndpointSettingRequest``
    ``{"ResourceType": "Policy", "RequestType": "Add"|"Remove", "Settings":
    {"Policies": [...]}}`` (``Settings`` is a ``PolicyEndpointRequest``; hcsshim
    ``hcn/hcnendpoint.go`` ``ModifyEndpointSettings`` / ``ApplyPolicy``, request types
    ``hcn/hcnnetwork.go`` ``RequestType``).  Raises the HCN error as it comes (the caller
    turns ``HCN_E_PORT_ALREADY_EXISTS`` into its own message)."""
    from hcs_sandbox.hcs import network as hcn

    if request_type not in ("Add", "Remove"):
        raise errors.SpecError(
            f"request type {request_type!r} is not Add or Remove",
            field="request_type",
            value=request_type,
        )
    request: dict[str, Any] = {
        "ResourceType": "Policy",
        "RequestType": request_type,
        "Settings": {"Policies": list(policies)},
    }
    with hcn.Endpoint.open(endpoint_id) as ep:
        ep.modify(request)


def endpoint_policies(endpoint_id: str) -> list[dict[str, Any]] | None:
    """The endpoint's ``Policies`` as HNS reports them, or None when it no longer exists."""
    from hcs_sandbox.hcs import network as hcn

    try:
        with hcn.Endpoint.open(endpoint_id) as ep:
            props = ep.query()
    except errors.NotFoundError:
        return None
    return [dict(p) for p in props.get("Policies") or () if isinstance(p, Mapping)]
