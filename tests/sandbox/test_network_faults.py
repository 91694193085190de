"""The NAT endpoint lifecycle under fault injection: a fault at every HCN call of the create
and remove paths leaves zero endpoints, systems and records (enumerated through the hcs
layer), and prune releases endpoints whose sandbox is gone."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from hcs_sandbox import errors
from hcs_sandbox.sandbox import network, paths
from hcs_sandbox.sandbox.maintenance import prune
from hcs_sandbox.sandbox.sandbox import Sandbox
from hcs_sandbox.sandbox.spec import PortMapping, SandboxSpec

if TYPE_CHECKING:
    from conftest import Inspector

E_FAIL = 0x80004005
NAT = SandboxSpec(name="netfault", network="nat", ports=(PortMapping(8080, 80),))
#: Close calls fail without closing the handle (the simulator counts it as leaked).
CLOSES = ("HcnCloseEndpoint", "HcnCloseNetwork")


def _hcn_calls(sim: Any, action: Any) -> list[tuple[str, int]]:
    """Every (HCN function, nth call) that ``action`` makes, in a clean world."""
    before = dict(sim._calls)
    action()
    calls = []
    for function, count in sorted(sim._calls.items()):
        if function.startswith("Hcn"):
            calls += [(function, n) for n in range(1, count - before.get(function, 0) + 1)]
    return calls


def _first_network_then_remove() -> None:
    Sandbox.create(NAT).remove(force=True)


NAT_NETWORK_ID = "6f1b5c3e-0000-4000-8000-68637373616e"  # planner.NAT_NETWORK_ID


def test_create_faults_at_every_hcn_call(sim: Any, world: Inspector) -> None:
    # Count the HCN calls of a create with no network yet, and of one that reuses it.
    from hcs_sandbox.hcs import network as hcn

    fresh = _hcn_calls(sim, _first_network_then_remove)
    reuse = _hcn_calls(sim, _first_network_then_remove)
    names = {f for f, _ in fresh}
    assert {"HcnCreateNetwork", "HcnOpenNetwork", "HcnCreateEndpoint"} <= names
    assert {"HcnQueryEndpointProperties", "HcnDeleteEndpoint"} <= names
    tried = 0
    failed: list[str] = []
    runs = [(call, True) for call in fresh] + [(call, False) for call in reuse]
    for (function, nth), without_network in runs:
        if function in CLOSES:
            continue  # test_close_faults
        if without_network:
            hcn.delete_network(NAT_NETWORK_ID, missing_ok=True)
        sim.inject(function, nth=nth, hresult=E_FAIL)
        try:
            Sandbox.create(NAT).remove(force=True)  # the fault hits create or remove
        except errors.HcsSandboxError:
            failed.append(f"{function}#{nth}")
        sim._faults.clear()
        # A failed remove leaves a record to retry; everything else is gone.
        for name in world.records():
            Sandbox.get(name.split(":")[0]).remove(force=True)
        assert world.endpoints() == [], f"fault at {function}#{nth} leaked an endpoint"
        assert world.systems() == [], f"fault at {function}#{nth} leaked a system"
        assert world.records() == [], f"fault at {function}#{nth} left a record"
        tried += 1
    assert tried >= 6
    # Every fault on the fresh create's network/endpoint calls made create (or remove) fail.
    for call in ("HcnCreateNetwork#1", "HcnCreateEndpoint#1", "HcnQueryEndpointProperties#1"):
        assert call in failed
    world.assert_nothing_left()


@pytest.mark.parametrize("function", CLOSES)
def test_close_faults(function: str, sim: Any, world: Inspector, allow_sim_leaks: bool) -> None:
    """A failing close only logs (the HNS objects are managed by id, not by handle)."""
    sim.inject(function, nth=1, hresult=E_FAIL, times=3)
    sb = Sandbox.create(NAT)
    assert sb.ip is not None
    sb.remove(force=True)
    assert world.endpoints() == []
    world.assert_nothing_left()


@pytest.mark.parametrize("nth", [1, 2])
def test_delete_endpoint_fault_on_remove_then_retry(nth: int, sim: Any, world: Inspector) -> None:
    first = Sandbox.create(SandboxSpec(name="r1", network="nat"))
    first.start()
    sim.inject("HcnDeleteEndpoint", nth=1, hresult=E_FAIL, times=nth)
    with pytest.raises(errors.HcnError):
        first.remove(force=True)
    # The record keeps the endpoint it still owns.
    assert world.records() == ["r1:removing"]
    assert len(world.endpoints()) == 1
    assert len(Sandbox.get("r1").record.endpoint_ids) == 1
    if nth == 1:
        Sandbox.get("r1").remove(force=True)
    else:
        with pytest.raises(errors.HcnError):
            Sandbox.get("r1").remove(force=True)
        from hcs_sandbox.sandbox.store import open_store

        with open_store(world.state) as store:
            store.update(store.get("r1").id, state="error")
        report = prune()
        assert report.failures == []
    world.assert_nothing_left()


def test_prune_releases_an_orphan_endpoint(world: Inspector) -> None:
    sb = Sandbox.create(SandboxSpec(name="keep", network="nat"))
    try:
        # An endpoint of ours whose record is gone (a crash between create and record).
        from hcs_sandbox.sandbox.planner import NAT_NETWORK_ID

        network_id = NAT_NETWORK_ID
        lost_id = world.marked_id()
        # Its sandbox's folder: made before the endpoint, so an orphan of this store has it.
        folder = paths.ensure_sandbox_dir(world.state, lost_id)
        orphan = network.create_endpoint(
            network_id,
            {
                "ID": "0b5f3c1e-1111-4000-8000-000000000001",
                "Name": f"{network.ENDPOINT_NAME_PREFIX}{lost_id}",
                "HostComputeNetwork": network_id,
                "SchemaVersion": {"Major": 2, "Minor": 0},
            },
        )
        # And one another tool owns: prune must leave it alone.
        foreign = network.create_endpoint(
            network_id,
            {
                "ID": "0b5f3c1e-2222-4000-8000-000000000002",
                "Name": "someone-else",
                "HostComputeNetwork": network_id,
                "SchemaVersion": {"Major": 2, "Minor": 0},
            },
        )
        assert len(world.endpoints()) == 3
        dry = prune(dry_run=True)
        assert dry.endpoints == [orphan.id]
        assert len(world.endpoints()) == 3
        report = prune()
        assert report.endpoints == [orphan.id]
        assert report.files == [str(folder)]
        assert report.failures == []
        left = sorted(world.endpoints())
        assert foreign.id in left
        assert orphan.id not in left
        assert sb.record.endpoint_ids[0] in left
        network.delete_endpoint(foreign.id)
    finally:
        sb.remove(force=True)
    world.assert_nothing_left()


def test_remove_after_endpoint_vanished(world: Inspector) -> None:
    """HCN_E_ENDPOINT_NOT_FOUND on delete counts as done (HCNHResult.md; multipass)."""
    sb = Sandbox.create(SandboxSpec(name="gone", network="nat"))
    endpoint_id = sb.record.endpoint_ids[0]
    sb.close()
    from hcs_sandbox.hcs.system import ComputeSystem

    with ComputeSystem.open(sb.system_id) as system:
        system.terminate_and_close(timeout=10)
    assert network.delete_endpoint(endpoint_id) is True
    assert network.delete_endpoint(endpoint_id) is False
    Sandbox.get("gone").remove(force=True)
    world.assert_nothing_left()
