"""HCN and virtual-disk handles are never closed under a call in flight.

``Network``, ``Endpoint`` and ``Vhd`` own their handle through a ``HandleGuard``, as
``ComputeSystem`` does: ``close()`` from one thread while another thread is inside a call that
uses the handle marks the object closed at once, and the native close (``HcnClose*``,
``CloseHandle``) runs when that call has returned.  The simulator keeps the call in flight for
its latency and records a violation when a handle is closed under a running call
(``Simulator.in_flight``, ``sim/backend.py`` ``HANDLE_ARGS``); the root conftest fails a test
that leaks a handle or leaves a violation.
"""

from __future__ import annotations

import gc
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from test_network import NAT  # the NAT network of the lifecycle tests

from hcs_sandbox import errors
from hcs_sandbox.hcs import network, storage

LATENCY = 0.5  # long enough that close() surely runs while the call is in flight

ENDPOINT = {"Name": "ep", "SchemaVersion": {"Major": 2, "Minor": 0}}
POLICY = {
    "ResourceType": "Policy",
    "RequestType": "Add",
    "Settings": {
        "Policies": [
            {
                "Type": "PortMapping",
                "Settings": {"Protocol": 6, "InternalPort": 80, "ExternalPort": 18080},
            }
        ]
    },
}


@pytest.fixture
def hcn() -> Iterator[tuple[network.Network, network.Endpoint]]:
    """An open network with one open endpoint, both deleted after the test."""
    net_id, ep_id = uuid.uuid4(), uuid.uuid4()
    net = network.Network.create(net_id, NAT)
    ep = network.Endpoint.create(net, ep_id, ENDPOINT)
    try:
        yield net, ep
    finally:
        ep.close()
        net.close()
        for other in network.enumerate_endpoints():
            network.delete_endpoint(other, missing_ok=True)
        network.delete_network(net_id, missing_ok=True)


def _close_during(
    sim: Any,
    obj: Any,
    function: str,
    close_function: str,
    call: Callable[[], object],
) -> object:
    """Run ``call`` on a thread, close ``obj`` while the simulator holds ``function`` in
    flight on its handle, and check that the native close waited for the call."""
    handle = obj.handle
    sim.set_latency(function, LATENCY)
    closes_before = sim.calls().get(close_function, 0)
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["result"] = call()
        except BaseException as exc:  # reported below
            outcome["error"] = exc

    worker = threading.Thread(target=run)
    worker.start()
    deadline = time.monotonic() + 5
    while function not in sim.in_flight().get(handle, ()) and time.monotonic() < deadline:
        time.sleep(0.002)
    assert function in sim.in_flight().get(handle, ()), f"{function} never started"

    obj.close()

    # Closed for the program at once; natively only once the call returned.
    assert obj.closed
    still_running = function in sim.in_flight().get(handle, ())
    closes_now = sim.calls().get(close_function, 0) - closes_before
    worker.join(10)
    sim.set_latency(function, 0)
    assert not worker.is_alive()
    assert still_running, "the call ended before close() returned: the test proved nothing"
    assert closes_now == 0, f"{close_function} ran while {function} was in flight"
    assert "error" not in outcome, outcome.get("error")
    assert sim.calls().get(close_function, 0) - closes_before == 1
    assert sim.violations() == []
    return outcome["result"]


@pytest.mark.parametrize(("kind", "name"), [("Endpoint", "ep"), ("Network", NAT["Name"])])
def test_closed_while_query_runs(sim: Any, hcn: Any, kind: str, name: str) -> None:
    obj = hcn[1] if kind == "Endpoint" else hcn[0]
    props = _close_during(sim, obj, f"HcnQuery{kind}Properties", f"HcnClose{kind}", obj.query)
    assert isinstance(props, dict)
    assert props.get("Name") == name


def test_endpoint_closed_while_modify_runs(sim: Any, hcn: Any) -> None:
    _net, ep = hcn
    _close_during(sim, ep, "HcnModifyEndpoint", "HcnCloseEndpoint", lambda: ep.modify(POLICY))
    with network.Endpoint.open(ep.id) as again:
        assert POLICY["Settings"]["Policies"][0] in again.query()["Policies"]  # type: ignore[index]


def test_network_closed_while_an_endpoint_is_created_on_it(sim: Any, hcn: Any) -> None:
    net, _ep = hcn
    made = _close_during(
        sim,
        net,
        "HcnCreateEndpoint",
        "HcnCloseNetwork",
        lambda: network.Endpoint.create(net, uuid.uuid4(), {**ENDPOINT, "Name": "ep2"}),
    )
    assert isinstance(made, network.Endpoint)
    made.close()


def test_vhd_closed_while_attach_runs(sim: Any, tmp_path: Path) -> None:
    vhd = storage.create_vhdx_handle(tmp_path / "a.vhdx", 1024**3)
    _close_during(sim, vhd, "AttachVirtualDisk", "CloseHandle", vhd.attach)


def test_vhd_closed_while_format_and_mount_path_run(sim: Any, tmp_path: Path) -> None:
    vhd = storage.create_vhdx_handle(tmp_path / "f.vhdx", 1024**3)
    _close_during(
        sim,
        vhd,
        "HcsFormatWritableLayerVhd",
        "CloseHandle",
        lambda: storage.format_writable_layer_vhd(vhd),
    )
    vhd = storage.open_vhd(tmp_path / "f.vhdx")
    vhd.attach()
    mount = _close_during(
        sim,
        vhd,
        "HcsGetLayerVhdMountPath",
        "CloseHandle",
        lambda: storage.get_layer_vhd_mount_path(vhd),
    )
    assert mount


def test_vhd_closed_while_base_layer_setup_runs(sim: Any, tmp_path: Path) -> None:
    path = tmp_path / "base.vhdx"
    storage.create_vhdx(path, 1024**3)
    layer = tmp_path / "uvm"
    layer.mkdir()
    vhd = storage.open_vhd(path)
    # hcsshim computestorage/helpers.go SetupUtilityVMBaseLayer: "the base vhdx must be
    # attached when calling `SetupBaseOSLayer`"; closing the last handle detaches it again.
    vhd.attach()
    _close_during(
        sim,
        vhd,
        "HcsSetupBaseOSLayer",
        "CloseHandle",
        lambda: storage.setup_base_os_layer(layer, vhd, {"Type": "Vm"}),
    )
    with storage.open_vhd(path) as again, pytest.raises(errors.HcsError) as info:
        storage.get_layer_vhd_mount_path(again)  # detached: "a VHD mounted on the host" only
    assert info.value.hresult == 0x80070057


def test_a_call_after_close_gets_todays_error_even_while_one_is_in_flight(
    sim: Any, hcn: Any, tmp_path: Path
) -> None:
    """While the native close waits for a call in flight, a new call is refused at once with
    the error a closed handle always gave."""
    _net, ep = hcn
    sim.set_latency("HcnQueryEndpointProperties", LATENCY)
    worker = threading.Thread(target=ep.query)
    worker.start()
    deadline = time.monotonic() + 5
    while not sim.in_flight() and time.monotonic() < deadline:
        time.sleep(0.002)
    ep.close()
    with pytest.raises(errors.HcnError, match=r"using HCN endpoint .* after it was closed") as info:
        ep.modify(POLICY)
    assert info.value.hresult == errors.E_HANDLE
    assert info.value.function == "HcnModifyEndpoint"
    with pytest.raises(errors.HcnError, match="after it was closed"):
        _ = ep.handle
    worker.join(10)
    sim.set_latency("HcnQueryEndpointProperties", 0)

    vhd = storage.create_vhdx_handle(tmp_path / "c.vhdx", 1024**3)
    vhd.close()
    for call in (vhd.attach, vhd.detach, lambda: storage.format_writable_layer_vhd(vhd)):
        with pytest.raises(errors.StorageError, match="is closed"):
            call()
    assert sim.violations() == []


@pytest.mark.parametrize("kind", ["network", "endpoint", "vhd"])
def test_finalizer_closes_once_and_keeps_nothing_alive(
    sim: Any, hcn: Any, tmp_path: Path, kind: str
) -> None:
    net, ep = hcn
    if kind == "vhd":
        close_function = "CloseHandle"
        obj: Any = storage.create_vhdx_handle(tmp_path / "g.vhdx", 1024**3)
    elif kind == "network":
        close_function = "HcnCloseNetwork"
        obj = network.Network.open(net.id)
    else:
        close_function = "HcnCloseEndpoint"
        obj = network.Endpoint.open(ep.id)
    before = sim.calls().get(close_function, 0)
    ref = weakref.ref(obj)
    del obj
    gc.collect()
    assert ref() is None, "something keeps the handle's owner alive"
    assert sim.calls().get(close_function, 0) - before == 1

    # Closed explicitly, then collected: still one native close.
    obj = network.Endpoint.open(ep.id) if kind == "endpoint" else None
    if obj is None:
        obj = (
            network.Network.open(net.id)
            if kind == "network"
            else storage.open_vhd(tmp_path / "g.vhdx")
        )
    obj.close()
    obj.close()
    del obj
    gc.collect()
    assert sim.calls().get(close_function, 0) - before == 2
    assert sim.violations() == []
