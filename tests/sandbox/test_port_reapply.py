"""Runtime ports of a persistent sandbox whose endpoint was re-created at start.

A stopped persistent sandbox keeps its endpoint; when HNS lost it meanwhile (host reboot, HNS
restart, someone deleted it), start re-creates it from the planner's document, which only
knows the spec's ports.  The ports added with ``publish`` (kept in the record) are then put
back on the new endpoint; if HCN refuses one, the start fails with one clear error and leaves
the sandbox stopped as it was (docs/networking.md#published-ports)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from hcs_sandbox import errors
from hcs_sandbox.sandbox import network
from hcs_sandbox.sandbox.sandbox import Sandbox
from hcs_sandbox.sandbox.spec import PortMapping, SandboxSpec

if TYPE_CHECKING:
    from conftest import Inspector


def _policies(endpoint_id: str) -> list[str]:
    """The endpoint's policies as HNS holds them, each as canonical JSON, sorted."""
    policies = network.endpoint_policies(endpoint_id)
    assert policies is not None, "the endpoint is gone"
    return sorted(json.dumps(p, sort_keys=True) for p in policies)


def _mappings(endpoint_id: str) -> list[tuple[int, int, int]]:
    """(ExternalPort, InternalPort, Protocol) of the PortMapping policies HNS holds."""
    return sorted(
        (p["Settings"]["ExternalPort"], p["Settings"]["InternalPort"], p["Settings"]["Protocol"])
        for p in network.endpoint_policies(endpoint_id) or []
        if p["Type"] == "PortMapping"
    )


def _acl_ids(endpoint_id: str) -> list[str]:
    return sorted(
        p["Settings"]["Id"]
        for p in network.endpoint_policies(endpoint_id) or []
        if p["Type"] == "ACL"
    )


def _stopped_with_lost_endpoint(spec: SandboxSpec, *publish: tuple[int, int, str]) -> str:
    """Create + start ``spec`` (persistent), publish ``publish``, stop it, then delete its
    endpoint behind its back (what a host reboot or an HNS restart does).  The endpoint id."""
    sb = Sandbox.create(spec.replace(persistence="persistent"))
    (endpoint_id,) = sb.record.endpoint_ids
    sb.start()
    for host, guest, protocol in publish:
        sb.publish(host, guest, protocol)
    sb.stop(timeout=2)
    sb.close()
    assert network.delete_endpoint(endpoint_id) is True
    return endpoint_id


def _assert_stopped_and_clean(name: str, endpoint_id: str, world: Inspector) -> None:
    """The failed start left nothing half-made: stopped, no system, no endpoint."""
    sb = Sandbox.get(name)
    assert sb.state == "stopped"
    assert network.endpoint_info(endpoint_id) is None
    assert endpoint_id not in sb.record.endpoint_ids
    assert [s for s in world.systems() if s.get("Id") == sb.system_id] == []


def test_runtime_ports_come_back_on_a_recreated_endpoint(world: Inspector) -> None:
    spec = SandboxSpec(name="keep", network="nat", ports=(PortMapping(8080, 80),))
    endpoint_id = _stopped_with_lost_endpoint(spec, (9000, 90, "tcp"), (5353, 53, "udp"))
    sb = Sandbox.get("keep")
    assert [str(p) for p in sb.ports()] == ["8080:80/tcp", "9000:90/tcp", "5353:53/udp"]
    sb.start()
    assert sb.state == "running"
    # HNS forwards what the record (and so `port`/`inspect`) lists.
    assert _mappings(endpoint_id) == [(5353, 53, 17), (8080, 80, 6), (9000, 90, 6)]
    assert [str(p) for p in Sandbox.get("keep").ports()] == [
        "8080:80/tcp",
        "9000:90/tcp",
        "5353:53/udp",
    ]
    assert "re-applied published ports 9000:90/tcp, 5353:53/udp" in sb.logs()
    # And they are runtime ports as before: unpublish works on the new endpoint.
    sb.unpublish(9000)
    assert _mappings(endpoint_id) == [(5353, 53, 17), (8080, 80, 6)]
    sb.remove(force=True)
    world.assert_nothing_left()


def test_internet_only_recreated_endpoint_holds_the_same_policies(world: Inspector) -> None:
    """The re-created endpoint holds exactly what the old one held: PortMappings and the
    inbound ACL rules (once per guest port, none for a guest port a spec port opens)."""
    spec = SandboxSpec(
        name="io",
        network="internet-only",
        ports=(PortMapping(8443, 443),),
        persistence="persistent",
    )
    sb = Sandbox.create(spec)
    (endpoint_id,) = sb.record.endpoint_ids
    sb.start()
    sb.publish(8080, 80)
    sb.publish(8081, 80)  # same guest port: no second ACL rule
    sb.publish(9443, 443)  # a spec port's guest port: its rule is there already
    sb.publish(5353, 53, "udp")
    before = _policies(endpoint_id)
    assert _acl_ids(endpoint_id).count("hcs-sandbox-allow-in-tcp-80") == 1
    sb.stop(timeout=2)
    assert network.delete_endpoint(endpoint_id) is True
    sb.start()
    assert _policies(endpoint_id) == before
    sb.remove(force=True)
    world.assert_nothing_left()


def test_a_taken_host_port_fails_the_start_with_one_clear_error(world: Inspector) -> None:
    """Another sandbox took the host port while the endpoint was gone: the start fails (as
    a spec port would), names the port and the holder, and leaves the sandbox stopped; the
    port can be unpublished while stopped, and then the start works."""
    endpoint_id = _stopped_with_lost_endpoint(
        SandboxSpec(name="keep", network="nat"), (9000, 90, "tcp"), (9001, 91, "tcp")
    )
    thief = Sandbox.create(SandboxSpec(name="thief", network="nat"))
    thief.publish(9001, 80)
    sb = Sandbox.get("keep")
    with pytest.raises(errors.HcnAlreadyExistsError) as info:
        sb.start()
    text = str(info.value)
    assert "cannot start sandbox 'keep'" in text
    assert "9001:91/tcp" in text
    assert "sandbox 'thief'" in text
    assert "HCN_E_PORT_ALREADY_EXISTS" in text
    remedy = info.value.remedy or ""
    assert "hcs-sandbox port keep --unpublish 9001/tcp" in remedy
    assert "sandbox 'thief'" in remedy
    _assert_stopped_and_clean("keep", endpoint_id, world)
    # The record still says what the sandbox is configured to publish.
    assert [str(p) for p in Sandbox.get("keep").ports()] == ["9000:90/tcp", "9001:91/tcp"]
    assert "could not re-apply published port 9001:91/tcp" in Sandbox.get("keep").logs()
    # The way out: unpublish while stopped, then start.
    sb = Sandbox.get("keep")
    sb.unpublish(9001)
    assert [str(p) for p in sb.ports()] == ["9000:90/tcp"]
    sb.start()
    assert _mappings(endpoint_id) == [(9000, 90, 6)]
    for each in (sb, thief):
        each.remove(force=True)
    world.assert_nothing_left()


# Counted from a start after the endpoint vanished: HcnOpenEndpoint 1 is start's look for
# the kept endpoint (endpoint_info), 2 and 3 and HcnModifyEndpoint 1 and 2 are the re-apply
# of the first and the second port.
@pytest.mark.parametrize(
    ("function", "nth"),
    [("HcnModifyEndpoint", 1), ("HcnModifyEndpoint", 2), ("HcnOpenEndpoint", 2)],
)
def test_reapply_fault_fails_the_start_cleanly(
    function: str, nth: int, sim: Any, world: Inspector
) -> None:
    """HCN fails while the runtime ports are put back (the first or the second port): the
    start fails with that error, the re-created endpoint is deleted again, the sandbox is
    stopped with its ports recorded, and the next start puts them all back."""
    endpoint_id = _stopped_with_lost_endpoint(
        SandboxSpec(name="keep", network="internet-only"), (9000, 90, "tcp"), (9001, 91, "udp")
    )
    sb = Sandbox.get("keep")
    sim.inject(function, nth=nth, hresult=0x80004005)
    with pytest.raises(errors.HcnError) as info:
        sb.start()
    assert "cannot start sandbox 'keep'" in str(info.value)
    assert "re-created network endpoint" in str(info.value)
    assert info.value.hresult == 0x80004005
    _assert_stopped_and_clean("keep", endpoint_id, world)
    assert [str(p) for p in Sandbox.get("keep").ports()] == ["9000:90/tcp", "9001:91/udp"]
    sb = Sandbox.get("keep")
    sb.start()
    assert _mappings(endpoint_id) == [(9000, 90, 6), (9001, 91, 17)]
    assert {"hcs-sandbox-allow-in-tcp-90", "hcs-sandbox-allow-in-udp-91"} <= set(
        _acl_ids(endpoint_id)
    )
    sb.remove(force=True)
    world.assert_nothing_left()


def test_kept_endpoint_is_not_touched(sim: Any, world: Inspector) -> None:
    """The usual stop/start keeps the endpoint and its policies: nothing is re-applied."""
    sb = Sandbox.create(SandboxSpec(name="keep", network="nat", persistence="persistent"))
    (endpoint_id,) = sb.record.endpoint_ids
    sb.start()
    sb.publish(9000, 90)
    sb.stop(timeout=2)
    sim.inject("HcnModifyEndpoint", hresult=0x80004005)  # would fail a re-apply
    sb.start()
    assert _mappings(endpoint_id) == [(9000, 90, 6)]
    assert "re-applied" not in sb.logs()
    sb.remove(force=True)
    world.assert_nothing_left()


def test_unpublish_while_stopped(world: Inspector) -> None:
    """A stopped persistent sandbox keeps its endpoint: unpublish takes the policy off it
    and crosses the port off the record; publish still needs a live sandbox."""
    sb = Sandbox.create(SandboxSpec(name="keep", network="nat", persistence="persistent"))
    (endpoint_id,) = sb.record.endpoint_ids
    sb.start()
    sb.publish(9000, 90)
    sb.publish(9001, 91)
    sb.stop(timeout=2)
    sb.unpublish(9000)
    assert _mappings(endpoint_id) == [(9001, 91, 6)]
    assert [str(p) for p in Sandbox.get("keep").ports()] == ["9001:91/tcp"]
    with pytest.raises(errors.SandboxStateError, match="stopped"):
        sb.publish(9002, 92)
    sb.start()
    assert _mappings(endpoint_id) == [(9001, 91, 6)]
    sb.remove(force=True)
    world.assert_nothing_left()


def test_unpublish_racing_a_start_never_leaves_an_unlisted_port_open(world: Inspector) -> None:
    """Review RV8a: unpublish of a stopped sandbox whose endpoint HNS lost, while a start
    begins in another thread.  The start re-creates the endpoint and puts the record's ports
    back; unpublish used to cross its port off the record AFTER that, leaving HNS forwarding
    a port nothing lists (and a second unpublish refused: 'not published').  Now the record
    and HNS agree: unpublish fails when the state changed under it, and the port stays
    listed (and published)."""
    import threading
    import time

    from hcs_sandbox.sim import get_simulator

    _stopped_with_lost_endpoint(SandboxSpec(name="keep", network="nat"), (9000, 90, "tcp"))
    sim = get_simulator()
    sim.set_latency("HcnOpenEndpoint", 0.5)  # unpublish's look at the (lost) endpoint
    starter, unpublisher = Sandbox.get("keep"), Sandbox.get("keep")
    failures: list[Exception] = []

    def unpublish() -> None:
        try:
            unpublisher.unpublish(9000)
        except Exception as exc:
            failures.append(exc)

    thread = threading.Thread(target=unpublish)
    try:
        thread.start()
        time.sleep(0.15)
        starter.start()
        thread.join()
    finally:
        sim.set_latency("HcnOpenEndpoint", 0)
    again = Sandbox.get("keep")
    (endpoint_id,) = again.record.endpoint_ids
    listed = [p.host_port for p in again.ports()]
    forwarded = [m[0] for m in _mappings(endpoint_id)]
    assert listed == forwarded, (listed, forwarded, failures)
    if listed:  # unpublish lost the race: it said so
        assert len(failures) == 1
        assert isinstance(failures[0], errors.SandboxStateError)
        again.unpublish(9000)  # and works once the start is done
        assert _mappings(endpoint_id) == []
    for sb in (starter, unpublisher, again):
        sb.close()
    Sandbox.get("keep").remove(force=True)
    world.assert_nothing_left()


def test_unpublish_racing_a_start_on_the_kept_endpoint_says_to_run_it_again(
    world: Inspector, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review RV9b: the start keeps the endpoint (no re-apply) and begins between
    unpublish's HNS Remove and its record update.  The record still lists the port, HNS no
    longer forwards it: the error says so truthfully, and unpublishing again settles it."""
    from hcs_sandbox.sandbox import ports

    sb = Sandbox.create(SandboxSpec(name="kept", network="nat", persistence="persistent"))
    (endpoint_id,) = sb.record.endpoint_ids
    sb.start()
    sb.publish(9000, 90)
    sb.stop(timeout=2)
    real = network.modify_endpoint_policies
    starter = Sandbox.get("kept")

    def then_start(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        monkeypatch.setattr(network, "modify_endpoint_policies", real)
        starter.start()  # another process, in effect
        return result

    monkeypatch.setattr(network, "modify_endpoint_policies", then_start)
    unpublisher = Sandbox.get("kept")
    with pytest.raises(errors.SandboxStateError) as caught:
        ports.unpublish(unpublisher, 9000)
    assert "still listed" in str(caught.value)
    assert "--unpublish 9000/tcp" in (caught.value.remedy or "")
    assert [p.host_port for p in Sandbox.get("kept").ports()] == [9000]
    assert _mappings(endpoint_id) == []
    Sandbox.get("kept").unpublish(9000)  # again: settled
    assert Sandbox.get("kept").ports() == []
    for obj in (sb, starter, unpublisher):
        obj.close()
    Sandbox.get("kept").remove(force=True)
    world.assert_nothing_left()
