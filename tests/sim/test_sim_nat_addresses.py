"""Endpoint addresses of an HCN network: the lowest free one, reused once its endpoint is gone.

HNS frees an endpoint's address when the endpoint is deleted (an address still held by a
stale endpoint is refused, and deleting that endpoint frees it: moby/moby#47576); the order
in which HNS hands addresses out is not documented, so the simulator takes the lowest free
one (docs/windows-notes.md "Endpoint addressing").
"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from simapi import Api, guid

from hcs_sandbox.sim import hresults as H

SCHEMA = {"Major": 2, "Minor": 0}


def network_doc(prefix: str, gateway: str | None) -> dict[str, Any]:
    subnet: dict[str, Any] = {"IpAddressPrefix": prefix}
    if gateway is not None:
        subnet["Routes"] = [{"NextHop": gateway, "DestinationPrefix": "0.0.0.0/0"}]
    return {
        "Name": f"addr-{prefix}",
        "Type": "NAT",
        "Ipams": [{"Type": "Static", "Subnets": [subnet]}],
        "SchemaVersion": SCHEMA,
    }


def hcn(api: Api, name: str, *args: object) -> tuple[int, str | None]:
    error = ctypes.c_void_p()
    hr = getattr(api, name)(*args, ctypes.byref(error)) & 0xFFFFFFFF
    return hr, api.take(error, "CoTaskMemFree")


class Net:
    """One network made through the exports; endpoints on it by address."""

    def __init__(self, api: Api, prefix: str, gateway: str | None) -> None:
        self.api = api
        self.id = str(uuid.uuid4())
        handle = ctypes.c_void_p()
        hr, err = hcn(
            api,
            "HcnCreateNetwork",
            ctypes.byref(guid(self.id)),
            # A name of its own: HCN_E_NETWORK_ALREADY_EXISTS is "A network with this name
            # already exists" (HCNHResult.md).
            json.dumps(dict(network_doc(prefix, gateway), Name=f"addr-{prefix}-{self.id}")),
            ctypes.byref(handle),
        )
        assert (hr, err) == (0, None)
        self.handle = handle.value or 0

    def create(self, **extra: object) -> tuple[int, str | None, str, str]:
        """HcnCreateEndpoint: (hresult, error record, endpoint id, its first IpAddress)."""
        ep = ctypes.c_void_p()
        body = json.dumps({"HostComputeNetwork": self.id, "SchemaVersion": SCHEMA, **extra})
        hr, err = hcn(
            self.api, "HcnCreateEndpoint", self.handle, ctypes.byref(guid()), body, ctypes.byref(ep)
        )
        if hr != 0:
            assert not ep.value
            return hr, err, "", ""
        props = ctypes.c_void_p()
        query = json.dumps({"SchemaVersion": SCHEMA, "Flags": 0})
        assert (
            hcn(self.api, "HcnQueryEndpointProperties", ep.value, query, ctypes.byref(props))[0]
            == 0
        )
        doc = json.loads(self.api.take(props, "CoTaskMemFree") or "")
        assert self.api.HcnCloseEndpoint(ep.value) == 0
        return hr, err, str(doc["ID"]), str(doc["IpConfigurations"][0]["IpAddress"])

    def address(self, **extra: object) -> str:
        hr, err, _, address = self.create(**extra)
        assert hr == 0, err
        return address

    def delete(self, endpoint_id: str) -> None:
        assert hcn(self.api, "HcnDeleteEndpoint", ctypes.byref(guid(endpoint_id)))[0] == 0

    def close(self) -> None:
        assert self.api.HcnCloseNetwork(self.handle) == 0


def endpoint_addresses(api: Api) -> dict[str, str]:
    """Every endpoint of the simulator's state: {id: first IpAddress}."""
    listing = ctypes.c_void_p()
    assert hcn(api, "HcnEnumerateEndpoints", None, ctypes.byref(listing))[0] == 0
    out = {}
    for endpoint_id in json.loads(api.take(listing, "CoTaskMemFree") or "[]"):
        ep = ctypes.c_void_p()
        assert (
            hcn(api, "HcnOpenEndpoint", ctypes.byref(guid(endpoint_id)), ctypes.byref(ep))[0] == 0
        )
        props = ctypes.c_void_p()
        assert hcn(api, "HcnQueryEndpointProperties", ep.value, None, ctypes.byref(props))[0] == 0
        doc = json.loads(api.take(props, "CoTaskMemFree") or "")
        assert api.HcnCloseEndpoint(ep.value) == 0
        out[endpoint_id] = str(doc["IpConfigurations"][0]["IpAddress"])
    return out


def test_a_deleted_endpoints_address_is_handed_out_again(api: Api) -> None:
    """300 create/delete rounds on a /24 (253 usable addresses): every round gets the first
    host address after the gateway.  The old simulator counted up and failed round 254."""
    net = Net(api, "192.168.40.0/24", "192.168.40.1")
    for _ in range(300):
        hr, err, endpoint_id, address = net.create()
        assert hr == 0, err
        assert address == "192.168.40.2"
        net.delete(endpoint_id)
    net.close()


def test_nat_sandboxes_made_and_removed_one_after_another_never_run_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The review's loop (RV7b F4): one simulator directory, NAT sandboxes created and removed
    in turn, none alive at any time.  The old simulator failed create #254 with
    "subnet 172.30.0.0/24 has no free address"; now each one gets the same address."""
    from hcs_sandbox import Sandbox, SandboxSpec

    monkeypatch.setenv("HCS_SANDBOX_STATE_DIR", str(tmp_path / "hcs-state"))
    addresses = set()
    for i in range(260):
        sandbox = Sandbox.create(SandboxSpec(name=f"n{i}", network="nat"))
        addresses.add(sandbox.ip)
        sandbox.remove(force=True)
    assert addresses == {"172.30.0.2"}


def test_the_lowest_free_address_fills_the_holes(api: Api) -> None:
    net = Net(api, "10.7.0.0/24", "10.7.0.1")
    made = {}
    for _ in range(5):
        hr, err, endpoint_id, address = net.create()
        assert hr == 0, err
        made[address] = endpoint_id
    assert sorted(made) == [f"10.7.0.{n}" for n in range(2, 7)]
    net.delete(made["10.7.0.5"])
    net.delete(made["10.7.0.3"])
    assert net.address() == "10.7.0.3"
    assert net.address() == "10.7.0.5"
    assert net.address() == "10.7.0.7"
    # An address an endpoint was created with is in use too.
    fixed = net.address(IpConfigurations=[{"IpAddress": "10.7.0.8", "PrefixLength": 24}])
    assert fixed == "10.7.0.8"
    assert net.address() == "10.7.0.9"
    net.close()


def test_addresses_are_per_network(api: Api) -> None:
    """Endpoints of another network with the same prefix take nothing from this one."""
    first = Net(api, "10.8.0.0/24", "10.8.0.1")
    second = Net(api, "10.8.0.0/24", "10.8.0.1")
    assert [first.address() for _ in range(3)] == ["10.8.0.2", "10.8.0.3", "10.8.0.4"]
    assert second.address() == "10.8.0.2"
    first.close()
    second.close()


def test_a_network_without_a_gateway_starts_at_the_first_host(api: Api) -> None:
    """Only the network and broadcast addresses (and a gateway, if any) are never handed out:
    a /30 without a route has exactly two."""
    net = Net(api, "10.9.0.0/30", None)
    assert [net.address(), net.address()] == ["10.9.0.1", "10.9.0.2"]
    assert net.create()[0] == H.HCN_E_INVALID_IP
    net.close()


def test_an_exhausted_subnet_fails_the_create_and_makes_nothing(api: Api) -> None:
    """A /29 with its gateway at .1 has five endpoint addresses (.2-.6); the sixth create fails
    with an error record and leaves no endpoint; a freed address is usable again."""
    net = Net(api, "10.10.0.0/29", "10.10.0.1")
    made = {}
    for _ in range(5):
        hr, err, endpoint_id, address = net.create()
        assert hr == 0, err
        made[address] = endpoint_id
    assert sorted(made) == [f"10.10.0.{n}" for n in range(2, 7)]
    before = endpoint_addresses(api)
    hr, err, _, _ = net.create()
    assert hr == H.HCN_E_INVALID_IP
    record = json.loads(err or "")
    assert record["ErrorCode"] == H.HCN_E_INVALID_IP
    assert "10.10.0.0/29 has no free address" in record["Error"]
    assert endpoint_addresses(api) == before
    net.delete(made["10.10.0.4"])
    assert net.address() == "10.10.0.4"
    assert net.create()[0] == H.HCN_E_INVALID_IP
    net.close()


def _child_code() -> str:
    """A child process that opens the network and creates endpoints in a loop, deleting every
    other one it made (so freed addresses are handed out again while the other child runs)."""
    return r"""
import ctypes, json, os, sys, time, uuid
from hcs_sandbox.native.loader import get_backend
from hcs_sandbox.sim.exports import EXPORTS, GUID
backend = get_backend()
def fn(dll, name):
    restype, argtypes = EXPORTS[(dll, name)]
    return ctypes.CFUNCTYPE(restype, *argtypes)(backend.resolve(dll, name))
hcn = lambda name: fn("computenetwork.dll", name)
free = fn("ole32.dll", "CoTaskMemFree")
def as_guid(text):
    out = GUID()
    ctypes.memmove(ctypes.byref(out), uuid.UUID(text).bytes_le, 16)
    return out
net_id, rounds, go = sys.argv[1], int(sys.argv[2]), sys.argv[3]
net = ctypes.c_void_p()
assert hcn("HcnOpenNetwork")(ctypes.byref(as_guid(net_id)), ctypes.byref(net), None) == 0
while not os.path.exists(go):
    time.sleep(0.001)
body = json.dumps({"HostComputeNetwork": net_id, "SchemaVersion": {"Major": 2, "Minor": 0}})
query = json.dumps({"SchemaVersion": {"Major": 2, "Minor": 0}, "Flags": 0})
made = []
for i in range(rounds):
    ep = ctypes.c_void_p()
    endpoint_id = str(uuid.uuid4())
    new_id = ctypes.byref(as_guid(endpoint_id))
    hr = hcn("HcnCreateEndpoint")(net, new_id, body, ctypes.byref(ep), None)
    assert hr == 0, hex(hr & 0xFFFFFFFF)
    props = ctypes.c_void_p()
    assert hcn("HcnQueryEndpointProperties")(ep, query, ctypes.byref(props), None) == 0
    address = json.loads(ctypes.wstring_at(props.value))["IpConfigurations"][0]["IpAddress"]
    free(props)
    assert hcn("HcnCloseEndpoint")(ep) == 0
    made.append((endpoint_id, address))
    if i % 2:
        gone = made.pop(-2)[0]
        assert hcn("HcnDeleteEndpoint")(ctypes.byref(as_guid(gone)), None) == 0
assert hcn("HcnCloseNetwork")(net) == 0
print(json.dumps(dict(made)))
"""


def test_two_processes_never_get_the_same_address(api: Api, sim_state_dir: Path) -> None:
    """Two processes create endpoints on one network at once, each deleting every other one it
    made: the endpoints alive at the end hold distinct addresses, the ones each child read back
    when it made them, and the freed addresses were handed out again."""
    net = Net(api, "10.11.0.0/24", "10.11.0.1")
    go = sim_state_dir.parent / "go"
    env = {**os.environ, "HCS_SANDBOX_SIMULATOR": str(sim_state_dir)}
    env.pop("HCS_SANDBOX_SIM_FAULTS", None)
    rounds = 80
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _child_code(), net.id, str(rounds), str(go)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    go.touch()
    held: dict[str, str] = {}
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        held.update(json.loads(out))
    assert len(held) == rounds  # each child keeps half of what it made
    alive = endpoint_addresses(api)
    assert alive == held
    assert len(set(alive.values())) == len(alive)
    # At most 2 x 41 endpoints are alive at once, so the lowest free address is never above
    # .83 (counting up would have reached .161).
    assert max(int(a.rsplit(".", 1)[1]) for a in alive.values()) <= 1 + 2 * (rounds // 2 + 1)
    net.close()
