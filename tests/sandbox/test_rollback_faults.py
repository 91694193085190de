"""Fault injection at every HCS and storage call on create/start/stop/remove: nothing is
left half-made (zero systems, files, endpoints, records once the sandbox is removed)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from hcs_sandbox import errors
from hcs_sandbox.sandbox.sandbox import Sandbox
from hcs_sandbox.sandbox.spec import SandboxSpec

if TYPE_CHECKING:
    from conftest import Inspector

E_FAIL = 0x80004005
ERROR_DISK_FULL = 0x80070070

# (function, where) pairs on the create path of a NAT sandbox (host base).
CREATE_CALLS = [
    ("CreateVirtualDisk", "call"),
    ("OpenVirtualDisk", "call"),
    ("HcsFormatWritableLayerVhd", "call"),
    ("HcsCreateEmptyGuestStateFile", "call"),
    ("HcsGrantVmAccess", "call"),
    ("HcnCreateNetwork", "call"),
    ("HcnOpenNetwork", "call"),
    ("HcnCreateEndpoint", "call"),
    ("HcnQueryEndpointProperties", "call"),
    ("HcsCreateComputeSystem", "call"),
    ("HcsCreateComputeSystem", "result"),
    ("HcsSetComputeSystemCallback", "call"),
]
START_CALLS = [
    ("HcsOpenComputeSystem", "call"),
    ("HcsGetComputeSystemProperties", "call"),
    ("HcsGetComputeSystemProperties", "result"),
    ("HcsStartComputeSystem", "call"),
    ("HcsStartComputeSystem", "result"),
]
STOP_CALLS = [
    ("HcsShutDownComputeSystem", "call"),
    ("HcsShutDownComputeSystem", "result"),
    ("HcsTerminateComputeSystem", "call"),
    ("HcsTerminateComputeSystem", "result"),
]
REMOVE_CALLS = [
    ("HcsOpenComputeSystem", "call"),
    ("HcsTerminateComputeSystem", "call"),
    ("HcsTerminateComputeSystem", "result"),
    ("HcnDeleteEndpoint", "call"),
]

NAT = SandboxSpec(name="faulty", network="nat")


def _ids(value: Any) -> str:
    return f"{value[0]}@{value[1]}" if isinstance(value, tuple) else str(value)


@pytest.mark.parametrize("call", CREATE_CALLS, ids=_ids)
def test_create_fault_leaves_nothing(call: tuple[str, str], sim: Any, world: Inspector) -> None:
    function, where = call
    sim.inject(function, hresult=E_FAIL, where=where)
    try:
        Sandbox.create(NAT).remove(force=True)
    except errors.HcsSandboxError:
        pass
    else:
        if not sim._calls.get(function):
            pytest.fail(f"{function} is not called on this path: update the list of calls")
        pytest.fail(f"a fault in {function} did not fail create")
    world.assert_nothing_left()
    # and the name is free again
    Sandbox.create(NAT).remove(force=True)
    world.assert_nothing_left()


def test_create_disk_full_is_a_clear_error(sim: Any, world: Inspector) -> None:
    sim.inject("CreateVirtualDisk", hresult=ERROR_DISK_FULL)
    with pytest.raises(errors.HcsSandboxError) as info:
        Sandbox.create(NAT)
    assert "CreateVirtualDisk" in str(info.value) or "disk" in str(info.value).lower()
    world.assert_nothing_left()


@pytest.mark.parametrize("call", START_CALLS, ids=_ids)
def test_start_fault_is_consistent(call: tuple[str, str], sim: Any, world: Inspector) -> None:
    function, where = call
    Sandbox.create(NAT).close()
    sb = Sandbox.get("faulty")  # a fresh object: opens the system, refreshes its state
    sim.inject(function, hresult=E_FAIL, where=where)
    with pytest.raises(errors.HcsSandboxError):
        sb.start()
    assert sb.state in ("created", "stopped")
    assert sb.record.state == sb.state
    sb.remove(force=True)
    world.assert_nothing_left()


@pytest.mark.parametrize("call", STOP_CALLS, ids=_ids)
def test_stop_fault_still_stops_or_reports(
    call: tuple[str, str], sim: Any, world: Inspector
) -> None:
    function, where = call
    sb = Sandbox.create(NAT)
    sb.start()
    sim.inject(function, hresult=E_FAIL, where=where)
    try:
        sb.stop(timeout=2)
    except errors.HcsSandboxError:
        assert sb.state in ("running", "stopped")
    else:
        assert sb.state == "stopped"
    sb.remove(force=True)
    world.assert_nothing_left()


@pytest.mark.parametrize("call", REMOVE_CALLS, ids=_ids)
def test_remove_fault_then_retry(call: tuple[str, str], sim: Any, world: Inspector) -> None:
    function, where = call
    Sandbox.create(NAT).start()
    sb = Sandbox.get("faulty")
    sim.inject(function, hresult=E_FAIL, where=where)
    try:
        sb.remove(force=True)
    except errors.HcsSandboxError:
        assert world.records() in (["faulty:removing"], ["faulty:running"])
        Sandbox.get("faulty").remove(force=True)
    world.assert_nothing_left()


@pytest.mark.parametrize("call", REMOVE_CALLS, ids=_ids)
def test_remove_fault_then_prune(call: tuple[str, str], sim: Any, world: Inspector) -> None:
    from hcs_sandbox.sandbox.maintenance import prune

    function, where = call
    Sandbox.create(NAT).start()
    sb = Sandbox.get("faulty")
    sim.inject(function, hresult=E_FAIL, where=where)
    try:
        sb.remove(force=True)
    except errors.HcsSandboxError:
        # The remover (this process) is alive: mark the record as an abandoned one.
        from hcs_sandbox.sandbox.store import open_store

        with open_store(world.state) as store:
            store.update(store.get("faulty").id, state="error")
        report = prune()
        assert report.failures == []
    world.assert_nothing_left()


def _interrupt_at(step: int) -> Any:
    calls = {"n": 0}

    def progress(_text: str) -> None:
        calls["n"] += 1
        if calls["n"] == step:
            raise KeyboardInterrupt

    return progress


def _count_steps() -> int:
    steps: list[str] = []
    Sandbox.create(SandboxSpec(name="count", network="nat"), progress=steps.append).remove()
    return len(steps)


def test_ctrl_c_at_every_create_step(world: Inspector) -> None:
    total = _count_steps()
    assert total >= 6
    for step in range(1, total + 1):
        with pytest.raises(KeyboardInterrupt):
            Sandbox.create(NAT, progress=_interrupt_at(step))
        world.assert_nothing_left()


def test_endpoint_failure_rolls_back(monkeypatch: pytest.MonkeyPatch, world: Inspector) -> None:
    """Python-level fault for the HCN endpoint (independent of the simulator's HCN faults)."""
    from hcs_sandbox.sandbox import network

    def broken(network_id: str, document: Any) -> Any:
        raise errors.error_from_hresult(0x803B000C, function="HcnCreateEndpoint", hcn=True)

    monkeypatch.setattr(network, "create_endpoint", broken)
    with pytest.raises(errors.HcnError):
        Sandbox.create(NAT)
    world.assert_nothing_left()
