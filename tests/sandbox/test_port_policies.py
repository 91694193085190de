"""One builder for published-port policies: the planner's endpoint document (spec ports, at
create) and ``ports.port_policy`` / ``ports.acl_policy`` (runtime ports, HcnModifyEndpoint)
come from ``planner.port_mapping_policy`` / ``planner.inbound_port_acl``, byte for byte."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hcs_sandbox.errors import SpecError
from hcs_sandbox.sandbox import planner, ports
from hcs_sandbox.sandbox.planner import HostFacts, plan
from hcs_sandbox.sandbox.spec import PortMapping, SandboxSpec
from hcs_sandbox.schema.network import EndpointPolicy

_PORTS = (PortMapping(8080, 80), PortMapping(5353, 53, "udp"), PortMapping(8443, 443))


def _endpoint_policies(spec: SandboxSpec) -> list[dict[str, Any]]:
    document = plan(spec, HostFacts.for_planning(spec)).endpoint_document
    assert document is not None
    return list(document.get("Policies") or [])


def _text(policies: list[dict[str, Any]]) -> str:
    return json.dumps(policies)  # key order included: the documents are byte-identical


def _runtime(p: PortMapping) -> ports.PublishedPort:
    return ports.PublishedPort(p.host_port, p.guest_port, p.protocol, runtime=True)


@pytest.mark.parametrize("network", ["nat", "internet-only"])
def test_create_time_and_run_time_port_mappings_are_identical(network: str) -> None:
    spec = SandboxSpec(name="same", network=network, ports=_PORTS)  # type: ignore[arg-type]
    planned = [p for p in _endpoint_policies(spec) if p["Type"] == "PortMapping"]
    assert _text(planned) == _text([ports.port_policy(_runtime(p)) for p in _PORTS])
    assert _text(planned) == _text(
        [
            planner.port_mapping_policy(p.host_port, p.guest_port, p.protocol).to_dict()
            for p in _PORTS
        ]
    )


def test_create_time_and_run_time_inbound_acls_are_identical() -> None:
    spec = SandboxSpec(name="same", network="internet-only", ports=_PORTS)
    planned = [
        p
        for p in _endpoint_policies(spec)
        if p["Type"] == "ACL" and p["Settings"]["Id"].startswith("hcs-sandbox-allow-in-")
    ]
    assert [p["Settings"]["Id"] for p in planned] == [
        "hcs-sandbox-allow-in-tcp-80",
        "hcs-sandbox-allow-in-udp-53",
        "hcs-sandbox-allow-in-tcp-443",
    ]
    assert _text(planned) == _text([ports.acl_policy(_runtime(p)) for p in _PORTS])
    assert _text(planned) == _text(
        [planner.inbound_port_acl(p.guest_port, p.protocol).to_dict() for p in _PORTS]
    )


def test_the_planner_and_ports_share_the_builder(monkeypatch: pytest.MonkeyPatch) -> None:
    """A change to the builder reaches both: there is no second copy to drift."""
    marked_mapping = EndpointPolicy.port_mapping(internal_port=1, external_port=2, protocol=6)
    marked_acl = planner.inbound_port_acl(3, "udp")
    monkeypatch.setattr(planner, "port_mapping_policy", lambda *_: marked_mapping)
    monkeypatch.setattr(planner, "inbound_port_acl", lambda *_: marked_acl)
    spec = SandboxSpec(name="same", network="internet-only", ports=(PortMapping(8080, 80),))
    planned = _endpoint_policies(spec)
    assert marked_mapping.to_dict() in planned
    assert marked_acl.to_dict() in planned
    port = _runtime(PortMapping(8080, 80))
    assert ports.port_policy(port) == marked_mapping.to_dict()
    assert ports.acl_policy(port) == marked_acl.to_dict()


def test_the_builder_refuses_an_unknown_protocol() -> None:
    """Not silently UDP (what ``protocol == "tcp" ? 6 : 17`` gave before)."""
    with pytest.raises(SpecError, match="'icmp' is not tcp or udp"):
        planner.port_mapping_policy(8080, 80, "icmp")
    with pytest.raises(SpecError, match="'icmp' is not tcp or udp"):
        planner.inbound_port_acl(80, "icmp")


def test_two_spec_ports_to_one_guest_port_get_one_inbound_acl() -> None:
    """Two host ports forwarded to one guest port: one inbound ACL rule for it (two would
    share an Id), as runtime publish already does."""
    spec = SandboxSpec(
        name="dup",
        network="internet-only",
        ports=(PortMapping(8080, 80), PortMapping(8081, 80), PortMapping(8082, 80, "udp")),
    )
    policies = _endpoint_policies(spec)
    ids = [p["Settings"]["Id"] for p in policies if p["Type"] == "ACL"]
    assert len(ids) == len(set(ids))
    assert ids.count("hcs-sandbox-allow-in-tcp-80") == 1
    assert ids.count("hcs-sandbox-allow-in-udp-80") == 1
    assert len([p for p in policies if p["Type"] == "PortMapping"]) == 3
