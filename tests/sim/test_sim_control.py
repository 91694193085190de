# ruff: noqa: E501
"""Fault injection, latency, leak accounting, hidden exports, the export table, cross-process."""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from simapi import Api, vm_doc

from hcs_sandbox.native.loader import NativeUnavailable, get_backend
from hcs_sandbox.sim import hresults as H
from hcs_sandbox.sim.core import SimulatorError, parse_faults, parse_latency
from hcs_sandbox.sim.exports import EXPORTS, abi_kind

BRIEF_EXPORTS = {
    "computecore.dll": "HcsCreateOperation HcsCloseOperation HcsWaitForOperationResult HcsGetOperationResult "
    "HcsWaitForOperationResultAndProcessInfo HcsGetOperationResultAndProcessInfo HcsSetOperationCallback "
    "HcsCancelOperation HcsGetOperationType HcsGetOperationId HcsCreateComputeSystem HcsOpenComputeSystem "
    "HcsCloseComputeSystem HcsStartComputeSystem HcsShutDownComputeSystem HcsTerminateComputeSystem "
    "HcsPauseComputeSystem HcsResumeComputeSystem HcsSaveComputeSystem HcsGetComputeSystemProperties "
    "HcsModifyComputeSystem HcsEnumerateComputeSystems HcsSetComputeSystemCallback HcsCreateProcess "
    "HcsOpenProcess HcsCloseProcess HcsTerminateProcess HcsSignalProcess HcsGetProcessInfo "
    "HcsGetProcessProperties HcsModifyProcess HcsSetProcessCallback HcsGetServiceProperties HcsGrantVmAccess "
    "HcsRevokeVmAccess HcsCreateEmptyGuestStateFile HcsCreateEmptyRuntimeStateFile "
    # optional exports (newer builds; the binding does not require them)
    "HcsCrashComputeSystem HcsWaitForComputeSystemExit HcsWaitForProcessExit "
    "HcsGrantVmGroupAccess HcsRevokeVmGroupAccess",
    "computestorage.dll": "HcsSetupBaseOSLayer HcsInitializeWritableLayer HcsFormatWritableLayerVhd "
    "HcsAttachLayerStorageFilter HcsDetachLayerStorageFilter HcsImportLayer HcsExportLayer HcsDestroyLayer "
    "HcsGetLayerVhdMountPath",
    "virtdisk.dll": "CreateVirtualDisk OpenVirtualDisk AttachVirtualDisk DetachVirtualDisk",
    "computenetwork.dll": "HcnEnumerateNetworks HcnCreateNetwork HcnOpenNetwork HcnModifyNetwork "
    "HcnQueryNetworkProperties HcnDeleteNetwork HcnCloseNetwork HcnEnumerateEndpoints HcnCreateEndpoint "
    "HcnOpenEndpoint HcnModifyEndpoint HcnQueryEndpointProperties HcnDeleteEndpoint HcnCloseEndpoint "
    "HcnRegisterServiceCallback HcnUnregisterServiceCallback",
    "kernel32.dll": "LocalFree CloseHandle",
    "ole32.dll": "CoTaskMemFree",
}


def test_export_table_is_exactly_the_brief() -> None:
    expected = {(dll, name) for dll, names in BRIEF_EXPORTS.items() for name in names.split()}
    assert set(EXPORTS) == expected
    assert abi_kind(EXPORTS[("computecore.dll", "HcsStartComputeSystem")][0]) == "i32"
    assert abi_kind(EXPORTS[("virtdisk.dll", "OpenVirtualDisk")][0]) == "u32"
    assert abi_kind(EXPORTS[("computenetwork.dll", "HcnOpenNetwork")][1][0]) == "ptr"


def test_unknown_and_hidden_exports(sim: Any) -> None:
    backend = get_backend()
    with pytest.raises(NativeUnavailable, match=r"has no export HcsFrobnicate"):
        backend.resolve("computecore.dll", "HcsFrobnicate")
    with pytest.raises(NativeUnavailable, match=r"no DLL named vmcompute\.dll"):
        backend.resolve("vmcompute.dll", "HcsCreateComputeSystem")
    sim.hide_export("computecore.dll", "HcsGetServiceProperties")
    with pytest.raises(
        NativeUnavailable, match=r"computecore\.dll has no export HcsGetServiceProperties"
    ):
        backend.resolve("computecore.dll", "HcsGetServiceProperties")


def test_leaked_string_and_bad_free_are_reported(api: Api, sim: Any, allow_sim_leaks: bool) -> None:
    out = ctypes.c_void_p()
    assert api.HcsGetServiceProperties(None, ctypes.byref(out)) == 0
    leaks = sim.leaks()
    assert leaks == {"string (HcsGetServiceProperties, free with LocalFree)": 1}
    api.CoTaskMemFree(out.value)  # wrong allocator
    assert any("must be freed with LocalFree" in v for v in sim.violations())
    assert api.LocalFree(12345) == 12345  # unknown pointer: LocalFree fails
    assert any("not a pointer the simulator allocated" in v for v in sim.violations())
    op = api.HcsCreateOperation(None, None)
    assert sim.leaks() == {"operation": 1}
    api.HcsCloseOperation(op)
    assert sim.leaks() == {}


def test_inject_call_result_and_hang(api: Api, sim: Any) -> None:
    sim.inject("HcsStartComputeSystem", nth=1, hresult=0x80370100)
    sim.inject("HcsStartComputeSystem", nth=2, hresult=0x80370107, where="result")
    _, handle, _ = api.create("faulty", vm_doc())
    assert api.call("HcsStartComputeSystem", handle, None)[0] == 0x80370100
    hr, doc = api.call("HcsStartComputeSystem", handle, None)
    assert hr == 0x80370107
    assert "injected" in json.loads(doc or "")["ErrorMessage"]
    assert api.state(handle) == "Created"
    sim.inject("HcsStartComputeSystem", hang=True)
    op = api.HcsCreateOperation(None, None)
    assert api.HcsStartComputeSystem(handle, op, None) == 0
    assert api.wait(op, 100)[0] == H.HCS_E_OPERATION_TIMEOUT
    sim.release_hangs()
    assert api.wait(op, 5000) == (0, None)
    api.HcsCloseOperation(op)
    assert api.state(handle) == "Running"
    api.call("HcsTerminateComputeSystem", handle, None)
    api.close(handle)


def test_fault_and_latency_syntax() -> None:
    faults = parse_faults("HcsStartComputeSystem:1:0x80370105,HcsCreateEndpoint:2:hang:3:result")
    assert (faults[0].function, faults[0].nth, faults[0].hresult) == (
        "HcsStartComputeSystem",
        1,
        0x80370105,
    )
    assert (faults[1].hang, faults[1].times, faults[1].where) == (True, 3, "result")
    assert parse_latency("*:0.2,HcsCreateProcess:1") == {"*": 0.2, "HcsCreateProcess": 1.0}
    with pytest.raises(SimulatorError, match="FUNCTION:NTH"):
        parse_faults("HcsStartComputeSystem")
    with pytest.raises(SimulatorError, match="not an HRESULT"):
        parse_faults("HcsStartComputeSystem:1:boom")
    with pytest.raises(SimulatorError, match="FUNCTION:SECONDS"):
        parse_latency("*:-1")


def test_latency_runs_concurrently(api: Api, sim: Any) -> None:
    sim.set_latency("*", 0.2)
    handles = []
    ops = []
    start = time.monotonic()
    for i in range(50):
        op = api.HcsCreateOperation(None, None)
        handle = ctypes.c_void_p()
        assert (
            api.HcsCreateComputeSystem(
                f"lat{i}", json.dumps(vm_doc()), op, None, ctypes.byref(handle)
            )
            == 0
        )
        ops.append(op)
        handles.append(handle.value)
    for op in ops:
        assert api.wait(op)[0] == 0
        api.HcsCloseOperation(op)
    elapsed = time.monotonic() - start
    assert 0.2 <= elapsed < 2.0
    sim.set_latency("*", 0)
    for handle in handles:
        api.call("HcsTerminateComputeSystem", handle, None)
        api.close(handle)


CHILD = r"""
import ctypes, json, sys
from hcs_sandbox.native.loader import get_backend
from hcs_sandbox.sim.exports import EXPORTS
from hcs_sandbox.sim import get_simulator
b = get_backend()
def f(dll, name):
    r, a = EXPORTS[(dll, name)]
    return ctypes.CFUNCTYPE(r, *a)(b.resolve(dll, name))
cc = "computecore.dll"
h = ctypes.c_void_p()
assert f(cc, "HcsOpenComputeSystem")(sys.argv[1], 0x10000000, ctypes.byref(h)) == 0
op = f(cc, "HcsCreateOperation")(None, None)
res = ctypes.c_void_p()
assert f(cc, "HcsGetComputeSystemProperties")(h, op, None) == 0
assert f(cc, "HcsWaitForOperationResult")(op, 5000, ctypes.byref(res)) == 0
print(json.loads(ctypes.wstring_at(res.value))["State"])
f("kernel32.dll", "LocalFree")(res)
assert f(cc, "HcsTerminateComputeSystem")(h, op, None) == 0
assert f(cc, "HcsWaitForOperationResult")(op, 5000, ctypes.byref(res)) == 0
f(cc, "HcsCloseOperation")(op)
f(cc, "HcsCloseComputeSystem")(h)
assert get_simulator().leaks() == {}, get_simulator().leaks()
"""


def test_other_process_sees_and_terminates_systems(api: Api, sim_state_dir: Path) -> None:
    handle = api.running("shared-vm")
    env = {**os.environ, "HCS_SANDBOX_SIMULATOR": str(sim_state_dir)}
    result = subprocess.run(
        [sys.executable, "-c", CHILD, "shared-vm"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Running"
    props = json.loads(api.call("HcsGetComputeSystemProperties", handle, None)[1] or "")
    assert props["State"] == "Stopped"
    api.close(handle)


def test_environment_faults_in_subprocess(sim_state_dir: Path) -> None:
    code = (
        "import ctypes\n"
        "from hcs_sandbox.native.loader import get_backend\n"
        "from hcs_sandbox.sim.exports import EXPORTS\n"
        "r, a = EXPORTS[('computecore.dll', 'HcsGetServiceProperties')]\n"
        "fn = ctypes.CFUNCTYPE(r, *a)(get_backend().resolve('computecore.dll', 'HcsGetServiceProperties'))\n"
        "out = ctypes.c_void_p()\n"
        "print(hex(fn(None, ctypes.byref(out)) & 0xFFFFFFFF))\n"
    )
    env = {
        **os.environ,
        "HCS_SANDBOX_SIMULATOR": str(sim_state_dir),
        "HCS_SANDBOX_SIM_FAULTS": "HcsGetServiceProperties:1:0x80370114",
    }
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.stdout.strip() == "0x80370114", result.stderr


def test_hcn_faults_come_with_an_error_record(api: Api, sim: Any) -> None:
    from simapi import guid

    sim.inject("HcnCreateNetwork", hresult=0x803B0020)
    error = ctypes.c_void_p()
    out = ctypes.c_void_p()
    hr = api.HcnCreateNetwork(
        ctypes.byref(guid()), '{"Name":"n"}', ctypes.byref(out), ctypes.byref(error)
    )
    assert hr & 0xFFFFFFFF == 0x803B0020
    assert out.value is None
    assert "injected" in json.loads(api.take(error, "CoTaskMemFree") or "")["Error"]


def test_calls_with_a_bad_handle_are_counted(api: Api, sim: Any) -> None:
    # docs/simulator.md: calls() counts every call of an export, which is what inject's nth
    # counts. A call with a NULL or closed system / process handle is a call too.
    _, handle, _ = api.create("counted", vm_doc(GuestConnection={}))
    api.close(handle)  # now a closed handle
    op = api.HcsCreateOperation(None, None)
    for system in (None, handle):
        for name in ("HcsStartComputeSystem", "HcsTerminateComputeSystem"):
            assert getattr(api, name)(system, op, None) & 0xFFFFFFFF in (H.E_INVALIDARG, H.E_HANDLE)
        out = ctypes.c_void_p()
        hr = api.HcsCreateProcess(system, "{}", op, None, ctypes.byref(out)) & 0xFFFFFFFF
        assert hr in (H.E_INVALIDARG, H.E_HANDLE)
        hr = api.HcsTerminateProcess(system, op, None) & 0xFFFFFFFF  # not a process handle
        assert hr in (H.E_INVALIDARG, H.E_HANDLE)
    api.HcsCloseOperation(op)
    calls = sim.calls()
    for name in (
        "HcsStartComputeSystem",
        "HcsTerminateComputeSystem",
        "HcsCreateProcess",
        "HcsTerminateProcess",
    ):
        assert calls.get(name, 0) == 2, (name, calls.get(name))


def test_inject_nth_counts_a_call_with_a_bad_handle(api: Api, sim: Any) -> None:
    # The 2nd HcsStartComputeSystem is the one on the good handle: the 1st (a stale handle)
    # counts, so the fault meant for the 2nd call is not applied to a later one.
    sim.inject("HcsStartComputeSystem", nth=2, hresult=0x80370100)
    _, handle, _ = api.create("nth-bad-handle", vm_doc(GuestConnection={}))
    op = api.HcsCreateOperation(None, None)
    assert api.HcsStartComputeSystem(0xDEAD0, op, None) & 0xFFFFFFFF == H.E_HANDLE
    api.HcsCloseOperation(op)
    assert api.call("HcsStartComputeSystem", handle, None)[0] == 0x80370100
    assert api.state(handle) == "Created"
    assert api.call("HcsStartComputeSystem", handle, None)[0] == 0  # the 3rd: no fault
    api.call("HcsTerminateComputeSystem", handle, None)
    api.close(handle)
