"""The shared NAT network's name held by another network (review RV22 finding 5): HNS refuses
the create with HCN_E_NETWORK_ALREADY_EXISTS ("A network with this name already exists",
HCNHResult.md), no network has our id, and retrying can never help, so the user is told which
network is in the way and how to remove it."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pytest

from hcs_sandbox import errors
from hcs_sandbox.hcs import network as hcn
from hcs_sandbox.sandbox import network, planner
from hcs_sandbox.sandbox.sandbox import Sandbox
from hcs_sandbox.sandbox.spec import SandboxSpec

if TYPE_CHECKING:
    from conftest import Inspector

SCHEMA = {"Major": 2, "Minor": 0}


def _foreign_network() -> str:
    """Another tool's network named like ours, with its own id."""
    other = str(uuid.uuid4())
    doc = {"SchemaVersion": SCHEMA, "Name": planner.NAT_NETWORK_NAME, "Type": "NAT"}
    with hcn.Network.create(other, doc):
        pass
    return other


def test_a_network_with_our_name_and_another_id_is_named_with_its_remedy(
    world: Inspector,
) -> None:
    other = _foreign_network()
    with pytest.raises(errors.HcnAlreadyExistsError) as info:
        Sandbox.create(SandboxSpec(name="clash", network="nat"))
    exc = info.value
    assert exc.name == "HCN_E_NETWORK_ALREADY_EXISTS"
    assert f"named {planner.NAT_NETWORK_NAME} exists with another id ({other})" in exc.message
    assert exc.remedy == (
        "remove it (elevated PowerShell): Get-HnsNetwork | Where-Object Name -eq "
        f"'{planner.NAT_NETWORK_NAME}' | Remove-HnsNetwork"
    )
    assert "try again" not in str(exc)
    assert "\n" not in str(exc)
    world.assert_nothing_left()
    # Once it is removed, the shared network is made as usual.
    hcn.delete_network(other)
    Sandbox.create(SandboxSpec(name="clash", network="nat")).remove(force=True)
    with hcn.Network.open(planner.NAT_NETWORK_ID):
        pass


def test_our_network_made_by_another_process_is_still_opened(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ALREADY_EXISTS for our own id (another process won the race) still opens theirs."""
    doc = {
        "SchemaVersion": SCHEMA,
        "ID": planner.NAT_NETWORK_ID,
        "Name": planner.NAT_NETWORK_NAME,
        "Type": "NAT",
    }
    with hcn.Network.create(planner.NAT_NETWORK_ID, doc):
        pass
    real_open = hcn.Network.open
    calls = []

    def open_missing_once(network_id: str) -> hcn.Network:
        calls.append(network_id)
        if len(calls) == 1:  # our first open ran before the other process's create
            raise errors.HcnNotFoundError("not yet", hresult=0x803B0001)
        return real_open(network_id)

    monkeypatch.setattr(hcn.Network, "open", staticmethod(open_missing_once))
    assert network.ensure_network(doc) == planner.NAT_NETWORK_ID
    assert len(calls) == 2


def _foreign_endpoint_with_port(host_port: int) -> str:
    """Another tool's endpoint on our NAT network publishing ``host_port``/tcp (no record)."""
    endpoint_id = str(uuid.uuid4())
    policy = planner.port_mapping_policy(host_port, 80, "tcp").to_dict()
    doc = {"SchemaVersion": SCHEMA, "Name": "other-tool", "Policies": [policy]}
    with (
        hcn.Network.open(planner.NAT_NETWORK_ID) as net,
        hcn.Endpoint.create(net, endpoint_id, doc),
    ):
        pass
    return endpoint_id


@pytest.mark.parametrize(
    ("ports", "named"),
    [((7272,), "host port 7272/tcp"), ((7070, 7272), "host port 7070/tcp or 7272/tcp")],
)
def test_a_port_taken_by_no_sandbox_of_ours_is_named_at_create(
    world: Inspector, ports: tuple[int, ...], named: str
) -> None:
    """QA F3: HCN does not say which port; none of ours holds it: the one port, or all."""
    from hcs_sandbox.sandbox.spec import PortMapping

    Sandbox.create(SandboxSpec(name="first", network="nat")).remove(force=True)  # the network
    foreign = _foreign_endpoint_with_port(7272)
    try:
        with pytest.raises(errors.HcnAlreadyExistsError) as info:
            Sandbox.create(
                SandboxSpec(name="pb", network="nat", ports=[PortMapping(p, 80) for p in ports])
            )
        exc = info.value
        assert exc.name == network.PORT_ALREADY_EXISTS
        assert f"{named} is already published on this host (by another sandbox or program)" in (
            exc.message
        )
        assert exc.remedy == f"publish a different host port ({named[10:]} is taken)"
        assert "\n" not in str(exc)
    finally:
        hcn.delete_endpoint(foreign)
    world.assert_nothing_left()
