"""MAC addresses come from HNS: endpoints are created without one, HNS picks a free address
from the NAT network's MacPool, and the compute system's adapter carries exactly that MAC
(hcsshim's way: internal/uvm/network.go ``addNIC``).  On the simulator, end to end."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from hcs_sandbox import errors
from hcs_sandbox.sandbox import network, planner
from hcs_sandbox.sandbox.sandbox import Sandbox
from hcs_sandbox.sandbox.spec import SandboxSpec

if TYPE_CHECKING:
    from conftest import Inspector


def _adapter(sim: Any, sb: Sandbox) -> dict[str, Any]:
    """The one network adapter of the document HCS received for ``sb``."""
    record = sim.store.read("systems", sb.system_id)
    assert record is not None
    adapters = record["Document"]["VirtualMachine"]["Devices"]["NetworkAdapters"]
    assert len(adapters) == 1
    return dict(next(iter(adapters.values())))


def _pool_range(low: str, high: str) -> range:
    return range(int(low.replace("-", ""), 16), int(high.replace("-", ""), 16) + 1)


def test_sixty_nat_sandboxes_get_distinct_macs_from_hns(world: Inspector, sim: Any) -> None:
    """60 sandboxes (a hashed 12-bit MAC would collide with ~35% probability): every one
    gets its own MAC, inside the pool, and its adapter carries its endpoint's MAC."""
    count = 60

    def make(i: int) -> Sandbox:
        return Sandbox.create(SandboxSpec(name=f"mac-{i:02d}", network="nat"))

    with ThreadPoolExecutor(max_workers=6) as pool:
        sandboxes = list(pool.map(make, range(count)))
    try:
        pool_range = _pool_range(*planner.MAC_POOL)
        macs: list[str] = []
        for sb in sandboxes:
            (endpoint_id,) = sb.record.endpoint_ids
            info = network.endpoint_info(endpoint_id)
            assert info is not None
            assert info.mac is not None
            adapter = _adapter(sim, sb)
            assert adapter == {"EndpointId": endpoint_id, "MacAddress": info.mac}
            assert sb.record.extra["mac"] == info.mac
            assert int(info.mac.replace("-", ""), 16) in pool_range
            macs.append(info.mac)
        assert len(set(macs)) == count
    finally:
        for sb in sandboxes:
            sb.remove(force=True)
    world.assert_nothing_left()


def test_persistent_restart_keeps_its_mac(world: Inspector, sim: Any) -> None:
    keep = Sandbox.create(SandboxSpec(name="keep", network="nat", persistence="persistent"))
    mac = keep.record.extra["mac"]
    assert _adapter(sim, keep)["MacAddress"] == mac
    keep.start()
    keep.stop(timeout=2)
    # While it is stopped, others take MACs from the same pool.
    others = [Sandbox.create(SandboxSpec(name=f"other-{i}", network="nat")) for i in range(3)]
    again = Sandbox.get("keep")
    again.start()
    assert again.record.extra["mac"] == mac
    assert _adapter(sim, again)["MacAddress"] == mac
    assert mac not in {o.record.extra["mac"] for o in others}
    for sb in (*others, again):
        sb.remove(force=True)
    keep.close()
    world.assert_nothing_left()


def test_restart_after_the_endpoint_vanished_uses_the_new_mac(world: Inspector, sim: Any) -> None:
    """If HNS lost the stopped sandbox's endpoint, the re-create makes a new one and the
    adapter carries the new endpoint's MAC, never the stale one."""
    keep = Sandbox.create(SandboxSpec(name="lost", network="nat", persistence="persistent"))
    (endpoint_id,) = keep.record.endpoint_ids
    keep.start()
    keep.stop(timeout=2)
    # Another sandbox takes the next free MAC; then the stopped one's endpoint disappears
    # (its MAC is free again) and a third sandbox takes that one.
    second = Sandbox.create(SandboxSpec(name="second", network="nat"))
    old_mac = keep.record.extra["mac"]
    assert network.delete_endpoint(endpoint_id) is True
    third = Sandbox.create(SandboxSpec(name="third", network="nat"))
    assert third.record.extra["mac"] == old_mac
    again = Sandbox.get("lost")
    again.start()
    info = network.endpoint_info(endpoint_id)
    assert info is not None
    assert info.mac not in (old_mac, second.record.extra["mac"])
    assert _adapter(sim, again)["MacAddress"] == info.mac == again.record.extra["mac"]
    for sb in (second, third, again):
        sb.remove(force=True)
    keep.close()
    world.assert_nothing_left()


def test_exhausted_mac_pool_fails_cleanly(
    world: Inspector, monkeypatch: pytest.MonkeyPatch, state_dir: Path
) -> None:
    """A pool with two addresses: the third networked sandbox fails with HNS's error and
    leaves nothing behind (the pool-exhausted HRESULT itself is UNCONFIRMED on Windows)."""
    monkeypatch.setattr(planner, "MAC_POOL", ("00-15-5D-52-C0-00", "00-15-5D-52-C0-01"))
    first = Sandbox.create(SandboxSpec(name="p1", network="nat"))
    second = Sandbox.create(SandboxSpec(name="p2", network="nat"))
    assert {first.record.extra["mac"], second.record.extra["mac"]} == {
        "00-15-5D-52-C0-00",
        "00-15-5D-52-C0-01",
    }
    with pytest.raises(errors.HcnError, match="no free MAC"):
        Sandbox.create(SandboxSpec(name="p3", network="nat"))
    # Nothing of p3 is left; the other two are untouched.
    assert sorted(world.records()) == ["p1:created", "p2:created"]
    assert len(world.endpoints()) == 2
    first.remove(force=True)
    second.remove(force=True)
    # The network itself is shared and outlives its sandboxes; everything else is gone.
    world.assert_nothing_left()


def test_endpoint_without_a_mac_is_a_clear_error(
    world: Inspector, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If HNS ever reported no MAC, the create stops with one clear message (rather than
    creating a VM whose adapter is not bound to the endpoint's MAC) and rolls back."""
    real = network.create_endpoint

    def no_mac(network_id: str, document: Any, **kwargs: Any) -> network.EndpointInfo:
        info = real(network_id, document, **kwargs)
        return network.EndpointInfo(id=info.id, mac=None, ip=info.ip)

    monkeypatch.setattr(network, "create_endpoint", no_mac)
    with pytest.raises(errors.HcsSandboxError, match="no MAC address for endpoint") as caught:
        Sandbox.create(SandboxSpec(name="nomac", network="nat"))
    assert caught.value.remedy
    world.assert_nothing_left()
