"""The simulator's in-flight accounting for HCN and virtual-disk handles: a call that uses a
handle is in flight from entry (its latency included) to return; closing the handle meanwhile
is a violation, closing it afterwards is not."""

from __future__ import annotations

import ctypes
import json
import threading
import time
from pathlib import Path

from simapi import Api, guid
from test_sim_hcn_storage import NAT, create_vhd, hcn

from hcs_sandbox.sim.backend import HANDLE_ARGS
from hcs_sandbox.sim.core import Simulator
from hcs_sandbox.sim.exports import EXPORTS, HCS_PROCESS_INFORMATION


def _wait_in_flight(sim: Simulator, handle: int, function: str) -> None:
    deadline = time.monotonic() + 5
    while function not in sim.in_flight().get(handle, ()) and time.monotonic() < deadline:
        time.sleep(0.002)
    assert function in sim.in_flight().get(handle, ()), f"{function} never went in flight"


def test_closing_an_endpoint_under_a_running_query_is_a_violation(
    api: Api, sim: Simulator, allow_sim_leaks: bool
) -> None:
    net, ep = ctypes.c_void_p(), ctypes.c_void_p()
    assert (
        hcn(api, "HcnCreateNetwork", ctypes.byref(guid()), json.dumps(NAT), ctypes.byref(net))[0]
        == 0
    )
    body = json.dumps({"Name": "ep", "SchemaVersion": {"Major": 2, "Minor": 0}})
    hr, err = hcn(api, "HcnCreateEndpoint", net.value, ctypes.byref(guid()), body, ctypes.byref(ep))
    assert hr == 0, err
    handle = ep.value or 0
    sim.set_latency("HcnQueryEndpointProperties", 0.3)
    outcome: list[tuple[int, str | None]] = []
    worker = threading.Thread(
        target=lambda: outcome.append(
            hcn(api, "HcnQueryEndpointProperties", handle, None, ctypes.byref(ctypes.c_void_p()))
        )
    )
    worker.start()
    _wait_in_flight(sim, handle, "HcnQueryEndpointProperties")
    assert api.HcnCloseEndpoint(handle) == 0
    worker.join(5)
    assert sim.in_flight() == {}
    assert sim.violations() == [
        f"HcnCloseEndpoint(0x{handle:X}): use after close: closed while "
        "HcnQueryEndpointProperties was still using it"
    ]
    assert outcome
    assert outcome[0][0] != 0  # the query itself found its handle gone
    assert api.HcnCloseNetwork(net.value) == 0  # (allow_sim_leaks: the violation is the point)


def test_closing_a_vhd_after_its_call_returned_is_no_violation(
    api: Api, sim: Simulator, tmp_path: Path
) -> None:
    error, handle = create_vhd(api, tmp_path / "d.vhdx")
    assert error == 0
    sim.set_latency("HcsFormatWritableLayerVhd", 0.2)
    worker = threading.Thread(target=lambda: api.HcsFormatWritableLayerVhd(handle))
    worker.start()
    _wait_in_flight(sim, handle, "HcsFormatWritableLayerVhd")
    worker.join(5)
    assert sim.in_flight() == {}
    assert api.CloseHandle(handle) == 1
    assert sim.violations() == []


def test_every_handle_function_is_an_export_with_a_handle_there() -> None:
    for name, position in HANDLE_ARGS.items():
        matches = [argtypes for (_dll, n), (_res, argtypes) in EXPORTS.items() if n == name]
        assert len(matches) == 1, name
        assert matches[0][position] is ctypes.c_void_p, name


def test_closing_a_process_handle_while_its_create_runs_is_a_violation(
    api: Api, sim: Simulator, allow_sim_leaks: bool
) -> None:
    """``HcsCreateProcess`` returns the new process's handle as it starts the operation;
    closing that handle before the operation completes is a use after close (review RV69 F3:
    nothing caught a library that tore it down under the running create), closing it after
    the operation completed is not."""
    system = api.running(f"inflight-{time.monotonic_ns()}")
    params = json.dumps({"CommandLine": "cmd /c echo hi"})
    sim.set_latency("HcsCreateProcess", 0.3)
    handles: list[int] = []
    for close_early in (True, False):
        op = api.HcsCreateOperation(None, None)
        out = ctypes.c_void_p()
        assert api.HcsCreateProcess(system, params, op, None, ctypes.byref(out)) == 0
        handle = out.value or 0
        handles.append(handle)
        if close_early:
            api.HcsCloseProcess(handle)  # the operation is still running
        info, doc = HCS_PROCESS_INFORMATION(), ctypes.c_void_p()
        hr = api.HcsWaitForOperationResultAndProcessInfo(
            op, 10_000, ctypes.byref(info), ctypes.byref(doc)
        )
        assert hr == 0, api.take(doc)
        api.HcsCloseOperation(op)
        if not close_early:
            api.HcsCloseProcess(handle)  # completed: no violation
    sim.set_latency("HcsCreateProcess", 0)
    assert sim.violations() == [
        f"HcsCloseProcess(0x{handles[0]:X}): use after close: closed while "
        "its HcsCreateProcess operation was still running"
    ]
    api.close(system)
