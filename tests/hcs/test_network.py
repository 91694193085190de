"""HCN networks and endpoints through the simulator."""

from __future__ import annotations

import uuid

import pytest

from hcs_sandbox import errors
from hcs_sandbox.hcs import network

# hcsshim hcn/hcnutils_test.go NAT network shape.
NAT = {
    "Name": "hcs-test-nat",
    "Type": "NAT",
    "Ipams": [
        {
            "Type": "Static",
            "Subnets": [
                {
                    "IpAddressPrefix": "192.168.100.0/24",
                    "Routes": [{"NextHop": "192.168.100.1", "DestinationPrefix": "0.0.0.0/0"}],
                }
            ],
        }
    ],
    "SchemaVersion": {"Major": 2, "Minor": 0},
}


def test_network_and_endpoint_lifecycle() -> None:
    net_id = uuid.uuid4()
    ep_id = uuid.uuid4()
    with network.Network.create(net_id, NAT) as net:
        assert net.id == str(net_id)
        props = net.query()
        assert props.get("Name") == "hcs-test-nat"
        assert str(net_id).lower() in [i.lower() for i in network.enumerate_networks()]
        with network.Endpoint.create(
            net, ep_id, {"Name": "ep1", "SchemaVersion": {"Major": 2, "Minor": 0}}
        ) as ep:
            ep_props = ep.query()
            assert ep_props.get("IpConfigurations") or ep_props.get("MacAddress")
            # ModifyEndpointSettingRequest + PortMapping policy (hcsshim hcn/hcnendpoint.go,
            # hcn/hcnpolicy.go: Protocol 6 = TCP).
            mapping = {
                "Type": "PortMapping",
                "Settings": {"Protocol": 6, "InternalPort": 80, "ExternalPort": 8080},
            }
            ep.modify(
                {
                    "ResourceType": "Policy",
                    "RequestType": "Add",
                    "Settings": {"Policies": [mapping]},
                }
            )
            assert mapping in ep.query().get("Policies", [])
        assert ep.closed
        with network.Endpoint.open(ep_id) as again:
            assert again.query().get("Name") == "ep1"
        assert str(ep_id).lower() in [i.lower() for i in network.enumerate_endpoints()]
        network.delete_endpoint(ep_id)
        network.delete_endpoint(ep_id, missing_ok=True)
        with pytest.raises(errors.HcnNotFoundError, match="HCN_E_ENDPOINT_NOT_FOUND"):
            network.delete_endpoint(ep_id)
    with network.Network.open(net_id) as net2:
        dns = {"ServerList": ["192.168.100.1"]}
        net2.modify({"ResourceType": "DNS", "RequestType": "Update", "Settings": dns})
        assert net2.query().get("Dns") == dns
    network.delete_network(net_id)
    network.delete_network(net_id, missing_ok=True)
    with pytest.raises(errors.HcnNotFoundError):
        network.Network.open(net_id)


def test_bad_network_document_has_error_record() -> None:
    with pytest.raises(errors.InvalidJsonError) as info:
        network.Network.create(uuid.uuid4(), {**NAT, "Nmae": "typo"})
    assert info.value.function == "HcnCreateNetwork"


def test_closed_network_rejects_calls() -> None:
    net_id = uuid.uuid4()
    net = network.Network.create(str(net_id), NAT)
    net.close()
    with pytest.raises(errors.HcsError, match="after it was closed"):
        net.query()
    network.delete_network(net_id)


def test_bad_guid() -> None:
    with pytest.raises(errors.SpecError, match="GUID"):
        network.Network.open("not-a-guid")


def exported(dll: str, name: str) -> bool:
    from hcs_sandbox.native.loader import NativeUnavailable, get_backend

    try:
        get_backend().resolve(dll, name)
    except NativeUnavailable:
        return False
    return True


def test_service_callback_optional() -> None:

    seen: list[int] = []

    def cb(kind: int, status: int, data: str | None) -> None:
        seen.append(kind)

    if not exported("computenetwork.dll", "HcnRegisterServiceCallback"):
        with pytest.raises(errors.HcsUnavailableError, match="HcnRegisterServiceCallback"):
            network.register_service_callback(cb)
        return
    reg = network.register_service_callback(cb)
    network.unregister_service_callback(reg)
