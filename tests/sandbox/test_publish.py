"""Published ports: spec ports at create, publish/unpublish at run time, conflicts, and what
HNS (the simulator) holds on the endpoint afterwards."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from hcs_sandbox import errors
from hcs_sandbox.sandbox import network
from hcs_sandbox.sandbox.sandbox import Sandbox
from hcs_sandbox.sandbox.spec import PortMapping, SandboxSpec

if TYPE_CHECKING:
    from conftest import Inspector


def _mappings(sb: Sandbox) -> list[tuple[int, int, int]]:
    """(ExternalPort, InternalPort, Protocol) of the PortMapping policies HNS holds."""
    policies = network.endpoint_policies(sb.record.endpoint_ids[0])
    assert policies is not None
    return sorted(
        (p["Settings"]["ExternalPort"], p["Settings"]["InternalPort"], p["Settings"]["Protocol"])
        for p in policies
        if p["Type"] == "PortMapping"
    )


def _acl_ids(sb: Sandbox) -> list[str]:
    policies = network.endpoint_policies(sb.record.endpoint_ids[0]) or []
    return sorted(p["Settings"]["Id"] for p in policies if p["Type"] == "ACL")


def test_spec_ports_reach_the_endpoint(world: Inspector) -> None:
    spec = SandboxSpec(
        name="web", network="nat", ports=(PortMapping(8080, 80), PortMapping(5353, 53, "udp"))
    )
    with Sandbox.run(spec) as sb:
        assert _mappings(sb) == [(5353, 53, 17), (8080, 80, 6)]
        info = sb.inspect()
        assert info["ports"] == [
            {"host_port": 8080, "guest_port": 80, "protocol": "tcp", "runtime": False},
            {"host_port": 5353, "guest_port": 53, "protocol": "udp", "runtime": False},
        ]
    world.assert_nothing_left()


def test_publish_and_unpublish(world: Inspector) -> None:
    with Sandbox.run(SandboxSpec(name="pub", network="nat")) as sb:
        assert _mappings(sb) == []
        port = sb.publish(9000, 90)
        assert str(port) == "9000:90/tcp"
        assert _mappings(sb) == [(9000, 90, 6)]
        # The record knows it, and a fresh object (another process) sees it.
        again = Sandbox.get("pub")
        assert [str(p) for p in again.ports()] == ["9000:90/tcp"]
        assert again.inspect()["ports"][0]["runtime"] is True
        sb.publish(9001, 91, "udp")
        assert _mappings(sb) == [(9000, 90, 6), (9001, 91, 17)]
        sb.unpublish(9000)
        assert _mappings(sb) == [(9001, 91, 17)]
        assert [str(p) for p in Sandbox.get("pub").ports()] == ["9001:91/udp"]
        assert "published host port 9001/udp" in sb.logs()
        assert "unpublished host port 9000/tcp" in sb.logs()
    world.assert_nothing_left()


def test_publish_conflict_across_sandboxes_is_one_clear_error(world: Inspector) -> None:
    first = Sandbox.create(SandboxSpec(name="one", network="nat", ports=(PortMapping(8080, 80),)))
    second = Sandbox.create(SandboxSpec(name="two", network="nat"))
    try:
        with pytest.raises(errors.HcnAlreadyExistsError) as info:
            second.publish(8080, 81)
        text = str(info.value)
        assert "8080/tcp" in text
        assert "sandbox 'one'" in text
        assert "HCN_E_PORT_ALREADY_EXISTS" in text
        assert info.value.remedy
        assert "different host port" in info.value.remedy
        # Nothing was recorded or left on the endpoint.
        assert second.ports() == []
        assert Sandbox.get("two").ports() == []
        assert _mappings(second) == []
        # The same host port with the other protocol is free.
        second.publish(8080, 81, "udp")
        assert _mappings(second) == [(8080, 81, 17)]
    finally:
        first.remove(force=True)
        second.remove(force=True)
    world.assert_nothing_left()


def test_create_with_a_taken_port_fails_cleanly(world: Inspector) -> None:
    first = Sandbox.create(SandboxSpec(name="a", network="nat", ports=(PortMapping(7000, 70),)))
    try:
        with pytest.raises(errors.HcnAlreadyExistsError) as info:
            Sandbox.create(SandboxSpec(name="b", network="nat", ports=(PortMapping(7000, 71),)))
        assert "already published" in str(info.value)
        assert world.records() == ["a:created"]
        assert len(world.endpoints()) == 1
    finally:
        first.remove(force=True)
    world.assert_nothing_left()


def test_publish_refusals(world: Inspector) -> None:
    none = Sandbox.create(SandboxSpec(name="quiet"))
    nat = Sandbox.create(SandboxSpec(name="loud", network="nat", ports=(PortMapping(8080, 80),)))
    try:
        with pytest.raises(errors.SpecError) as info:
            none.publish(8080, 80)
        assert "no network" in str(info.value)
        assert "--network nat" in str(info.value)
        with pytest.raises(errors.SpecError, match="already published"):
            nat.publish(8080, 8080)
        with pytest.raises(errors.SpecError, match="stays published"):
            nat.unpublish(8080)
        with pytest.raises(errors.SpecError, match="not published"):
            nat.unpublish(1234)
        with pytest.raises(errors.SpecError):
            nat.publish(0, 80)
        with pytest.raises(errors.SpecError):
            nat.publish(8081, 80, "icmp")
        nat.start()  # stop leaves a never-started (created) sandbox as it is
        nat.stop()
        with pytest.raises(errors.SandboxStateError, match="stopped"):
            nat.publish(8082, 80)
    finally:
        none.remove(force=True)
        nat.remove(force=True)
    world.assert_nothing_left()


def test_publish_fault_leaves_no_record_entry(sim: Any, world: Inspector) -> None:
    with Sandbox.run(SandboxSpec(name="pf", network="nat")) as sb:
        for function in ("HcnOpenEndpoint", "HcnModifyEndpoint"):
            sim.inject(function, hresult=0x80004005)
            with pytest.raises(errors.HcnError):
                sb.publish(9100, 100)
            assert Sandbox.get("pf").ports() == []
            assert _mappings(sb) == []
        sb.publish(9100, 100)  # works once the fault is gone
        assert _mappings(sb) == [(9100, 100, 6)]
    world.assert_nothing_left()


def test_internet_only_acls_on_the_endpoint(world: Inspector) -> None:
    spec = SandboxSpec(name="io", network="internet-only", ports=(PortMapping(8443, 443),))
    with Sandbox.run(spec) as sb:
        assert sb.ip is not None
        ids = _acl_ids(sb)
        assert "hcs-sandbox-block-private" in ids
        assert "hcs-sandbox-allow-out" in ids
        assert "hcs-sandbox-allow-in-tcp-443" in ids
        policies = network.endpoint_policies(sb.record.endpoint_ids[0]) or []
        block = next(p for p in policies if p["Settings"].get("Id") == "hcs-sandbox-block-private")
        assert block["Settings"]["Action"] == "Block"
        assert block["Settings"]["Direction"] == "Out"
        assert "10.0.0.0/8" in block["Settings"]["RemoteAddresses"]
        assert "192.168.0.0/16" in block["Settings"]["RemoteAddresses"]
        # A runtime port gets its inbound allow rule too, and loses it again.
        sb.publish(8080, 80)
        assert "hcs-sandbox-allow-in-tcp-80" in _acl_ids(sb)
        sb.unpublish(8080)
        assert "hcs-sandbox-allow-in-tcp-80" not in _acl_ids(sb)
        assert "hcs-sandbox-allow-in-tcp-443" in _acl_ids(sb)
    world.assert_nothing_left()


def test_ip_on_nat_and_none(world: Inspector) -> None:
    with Sandbox.run(SandboxSpec(name="n1", network="nat")) as sb:
        ip = sb.ip
        assert ip is not None
        info = network.endpoint_info(sb.record.endpoint_ids[0])
        assert info is not None
        assert info.ip == ip
        assert sb.inspect()["ip"] == ip
        assert sb.inspect()["mac"] == info.mac
        assert Sandbox.get("n1").ip == ip
        with Sandbox.run(SandboxSpec(name="n2", network="nat")) as other:
            assert other.ip is not None
            assert other.ip != ip
    with Sandbox.run(SandboxSpec(name="n3")) as sb:
        assert sb.ip is None
        assert sb.inspect()["ip"] is None
        assert sb.inspect()["ports"] == []
        assert not sb.record.endpoint_ids
    world.assert_nothing_left()
