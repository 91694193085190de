"""HCN as HCNHResult.md defines its codes (review RV22 findings 4-6): explicit endpoint
addresses are checked, a second network with the same Name is refused, and a NULL Id is
refused (the zero GUID still means "assign one")."""

from __future__ import annotations

import ctypes
import json
import uuid

import pytest
from simapi import Api, guid
from test_sim_nat_addresses import SCHEMA, Net, endpoint_addresses, hcn, network_doc

from hcs_sandbox.sim import hresults as H


def ip(address: str) -> dict[str, object]:
    return {"IpConfigurations": [{"IpAddress": address, "PrefixLength": 24}]}


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("not-an-ip", H.HCN_E_INVALID_IP),
        ("10.9.9.9", H.HCN_E_INVALID_IP),  # outside the subnet
        ("fd00::5", H.HCN_E_INVALID_IP),  # another IP version, in no subnet
        ("172.31.0.0", H.HCN_E_ADDR_INVALID_OR_RESERVED),  # the network address
        ("172.31.0.255", H.HCN_E_ADDR_INVALID_OR_RESERVED),  # the broadcast address
        ("172.31.0.1", H.HCN_E_ADDR_INVALID_OR_RESERVED),  # the gateway
    ],
)
def test_an_explicit_address_is_checked(api: Api, address: str, expected: int) -> None:
    net = Net(api, "172.31.0.0/24", "172.31.0.1")
    hr, err, _, _ = net.create(**ip(address))
    assert hr == expected
    assert address in json.loads(err or "{}")["Error"]
    assert endpoint_addresses(api) == {}  # nothing made
    net.close()


def test_an_address_another_endpoint_holds_is_refused_until_it_is_deleted(api: Api) -> None:
    """The windows-notes "Endpoint addressing" row: an address a stale endpoint still holds
    is refused (HCN_E_ADDR_INVALID_OR_RESERVED) until it is deleted."""
    net = Net(api, "172.31.0.0/24", "172.31.0.1")
    hr, _, first, address = net.create(**ip("172.31.0.7"))
    assert (hr, address) == (0, "172.31.0.7")
    hr, err, _, _ = net.create(**ip("172.31.0.7"))
    assert hr == H.HCN_E_ADDR_INVALID_OR_RESERVED
    assert first in json.loads(err or "{}")["Error"]
    assert net.address() == "172.31.0.2"  # assigned addresses skip it as before
    net.delete(first)
    assert net.address(**ip("172.31.0.7")) == "172.31.0.7"
    net.close()


def test_the_same_address_on_another_network_is_free(api: Api) -> None:
    first = Net(api, "10.8.0.0/24", "10.8.0.1")
    second = Net(api, "10.8.0.0/24", "10.8.0.1")
    assert first.address(**ip("10.8.0.9")) == "10.8.0.9"
    assert second.address(**ip("10.8.0.9")) == "10.8.0.9"
    first.close()
    second.close()


def networks(api: Api) -> list[str]:
    out = ctypes.c_void_p()
    assert hcn(api, "HcnEnumerateNetworks", None, ctypes.byref(out))[0] == 0
    return list(json.loads(api.take(out, "CoTaskMemFree") or "[]"))


def test_a_second_network_with_the_same_name_is_refused(api: Api) -> None:
    """HCNHResult.md: "HCN_E_NETWORK_ALREADY_EXISTS | A network with this name already
    exists"."""
    doc = json.dumps(network_doc("10.20.0.0/24", "10.20.0.1"))
    first = ctypes.c_void_p()
    assert hcn(api, "HcnCreateNetwork", ctypes.byref(guid()), doc, ctypes.byref(first)) == (0, None)
    second = ctypes.c_void_p()
    other_id = str(uuid.uuid4())
    hr, err = hcn(api, "HcnCreateNetwork", ctypes.byref(guid(other_id)), doc, ctypes.byref(second))
    assert hr == H.HCN_E_NETWORK_ALREADY_EXISTS
    assert "addr-10.20.0.0/24" in json.loads(err or "{}")["Error"]
    assert not second.value
    assert other_id not in networks(api)
    assert len(networks(api)) == 1
    assert api.HcnCloseNetwork(first.value) == 0


def test_a_null_id_is_refused_the_zero_guid_assigns_one(api: Api) -> None:
    """``_In_ REFGUID Id`` (HcnCreateNetwork.md, HcnCreateEndpoint.md): NULL is E_POINTER."""
    doc = json.dumps(network_doc("10.21.0.0/24", "10.21.0.1"))
    net = ctypes.c_void_p()
    hr, err = hcn(api, "HcnCreateNetwork", None, doc, ctypes.byref(net))
    assert hr == H.E_POINTER
    assert "Id is NULL" in json.loads(err or "{}")["Error"]
    assert not net.value
    assert networks(api) == []
    assert hcn(api, "HcnCreateNetwork", ctypes.byref(guid()), doc, ctypes.byref(net)) == (0, None)
    assert len(networks(api)) == 1
    body = json.dumps({"SchemaVersion": SCHEMA})
    ep = ctypes.c_void_p()
    hr, err = hcn(api, "HcnCreateEndpoint", net.value, None, body, ctypes.byref(ep))
    assert hr == H.E_POINTER
    assert not ep.value
    assert endpoint_addresses(api) == {}
    assert (
        hcn(api, "HcnCreateEndpoint", net.value, ctypes.byref(guid()), body, ctypes.byref(ep))[0]
        == 0
    )
    assert len(endpoint_addresses(api)) == 1
    assert api.HcnCloseEndpoint(ep.value) == 0
    assert api.HcnCloseNetwork(net.value) == 0
