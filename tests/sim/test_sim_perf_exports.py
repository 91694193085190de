"""Simulator follow-up: cheap per-operation work (lazy guest folders, record files rewritten in
place, striped locks, worker pool), cross-process SystemExited events, and the optional
exports (HcsCrashComputeSystem, HcsWaitForComputeSystemExit, HcsWaitForProcessExit,
HcsGrantVmGroupAccess/HcsRevokeVmGroupAccess, HcnRegister/UnregisterServiceCallback)."""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from simapi import Api, guid, vm_doc

from hcs_sandbox.sim import hresults as H
from hcs_sandbox.sim.exports import HCN_NOTIFICATION_CALLBACK, HCS_EVENT, HCS_EVENT_CALLBACK
from hcs_sandbox.sim.state import StateStore
from hcs_sandbox.sim.workers import Workers

# ---- state store ---------------------------------------------------------------------------


def test_record_roundtrip_in_place_and_torn_reads(tmp_path: Path) -> None:
    store = StateStore(str(tmp_path))
    with store.lock_record("systems", "VM-1"):
        store.write("systems", "VM-1", {"Id": "VM-1", "Big": "x" * 5000})
        store.write("systems", "vm-1", {"Id": "VM-1", "State": "Stopped"})  # shorter
    assert store.read("systems", "Vm-1") == {"Id": "VM-1", "State": "Stopped"}
    path = tmp_path / "systems" / "vm-1.json"
    assert path.read_bytes().startswith(b"HCSSIM ")
    # A writer killed between its write and its truncate leaves trailing bytes: ignored.
    path.write_bytes(path.read_bytes() + b"garbage-after-the-record")
    assert store.read("systems", "vm-1") == {"Id": "VM-1", "State": "Stopped"}
    # A torn record (header and body disagree) is retried, and a writer that finishes wins.
    good = path.read_bytes()
    path.write_bytes(good.replace(b"Stopped", b"Stoppex"))
    timer = threading.Timer(0.05, lambda: path.write_bytes(good))
    timer.start()
    assert store.read("systems", "vm-1") == {"Id": "VM-1", "State": "Stopped"}
    timer.join()
    assert [r["Id"] for r in store.records("systems")] == ["VM-1"]
    assert store.read("systems", "missing") is None
    store.close()


def test_record_locks_exclude_threads_and_global_lock(tmp_path: Path) -> None:
    store = StateStore(str(tmp_path))
    inside: list[str] = []
    overlap: list[str] = []
    start = threading.Barrier(3)

    def worker(kind: str) -> None:
        start.wait()
        for _ in range(30):
            if kind == "global":
                with store.lock():
                    inside.append(kind)
                    if len(inside) > 1:
                        overlap.append(",".join(inside))
                    time.sleep(0.0005)
                    inside.remove(kind)
            else:
                with store.lock_record("systems", "same"):
                    inside.append(kind)
                    if len(inside) > 1:
                        overlap.append(",".join(inside))
                    with store.lock_record("systems", "same"):  # re-entrant
                        time.sleep(0.0005)
                    inside.remove(kind)

    threads = [threading.Thread(target=worker, args=(k,)) for k in ("a", "b", "global")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert overlap == []
    with store.lock(), store.lock_record("systems", "x"):  # record lock under global: no-op
        pass
    with store.lock_record("systems", "x"), pytest.raises(RuntimeError, match="upgrade"):  # noqa: SIM117
        with store.lock():
            pass
    store.close()


def test_workers_run_delayed_jobs_and_survive_blocking_jobs() -> None:
    workers = Workers("test")
    order: list[str] = []
    release = threading.Event()
    done = threading.Event()
    workers.submit(lambda: order.append("late"), delay=0.1)
    for _ in range(Workers.CORE):  # occupy every core worker
        workers.submit(lambda: release.wait(5))
    workers.submit(lambda: (order.append("now"), done.set()))
    assert done.wait(2), "a stalled pool must grow"
    release.set()
    deadline = time.monotonic() + 2
    while "late" not in order and time.monotonic() < deadline:
        time.sleep(0.01)
    assert order == ["now", "late"]


# ---- lazy guest folders ----------------------------------------------------------------------


def test_guest_folder_is_created_lazily_and_discarded(api: Api, sim_state_dir: Path) -> None:
    handle = api.running("lazy-vm")
    guests = sim_state_dir / "guests"
    assert not (guests / "lazy-vm").exists()  # no guest process yet: no folder
    proc = api.spawn(handle, "cmd /c echo hi> C:\\note.txt")
    proc.communicate()
    assert proc.wait_exit() == 0
    proc.close()
    assert (guests / "lazy-vm" / "C" / "note.txt").read_text().strip() == "hi"
    assert api.call("HcsTerminateComputeSystem", handle, None)[0] == 0
    api.close(handle)
    assert not (guests / "lazy-vm").exists()  # moved to the trash at once...
    deadline = time.monotonic() + 5
    while any((sim_state_dir / "trash").iterdir()) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not any((sim_state_dir / "trash").iterdir())  # ...and deleted in the background
    # The same id again starts from a fresh C:\.
    again = api.running("lazy-vm")
    proc = api.spawn(again, "cmd /c type C:\\note.txt")
    proc.communicate()
    assert proc.wait_exit() == 1
    proc.close()
    assert api.call("HcsTerminateComputeSystem", again, None)[0] == 0
    api.close(again)


# ---- cross-process SystemExited ----------------------------------------------------------------

KILLER = r"""
import ctypes, sys
from hcs_sandbox.native.loader import get_backend
from hcs_sandbox.sim.exports import EXPORTS
def f(dll, name):
    r, a = EXPORTS[(dll, name)]
    return ctypes.CFUNCTYPE(r, *a)(get_backend().resolve(dll, name))
cc = "computecore.dll"
h = ctypes.c_void_p()
assert f(cc, "HcsOpenComputeSystem")(sys.argv[1], 0x10000000, ctypes.byref(h)) == 0
op = f(cc, "HcsCreateOperation")(None, None)
res = ctypes.c_void_p()
assert f(cc, "HcsTerminateComputeSystem")(h, op, None) == 0
assert f(cc, "HcsWaitForOperationResult")(op, 5000, ctypes.byref(res)) == 0
f(cc, "HcsCloseOperation")(op)
f(cc, "HcsCloseComputeSystem")(h)
"""


def test_exit_made_by_another_process_reaches_callbacks_here(api: Api, sim_state_dir: Path) -> None:
    handle = api.running("watched-vm")
    guest = api.spawn(handle, "timeout /t -1")  # a guest process here must end too
    seen: list[dict[str, Any]] = []
    exited = threading.Event()

    @HCS_EVENT_CALLBACK
    def on_event(event: ctypes._Pointer[HCS_EVENT], context: int | None) -> None:
        if event.contents.Type == 1:  # HcsEventSystemExited
            seen.append(json.loads(event.contents.EventData))
            exited.set()

    assert api.HcsSetComputeSystemCallback(handle, 0, None, on_event) == 0
    env = {**os.environ, "HCS_SANDBOX_SIMULATOR": str(sim_state_dir)}
    result = subprocess.run(
        [sys.executable, "-c", KILLER, "watched-vm"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert exited.wait(5), "the watcher did not see the other process's terminate"
    assert seen == [{"Status": 0, "ExitType": "ForcedExit"}]
    assert guest.wait_exit(5) == 1
    guest.communicate()
    guest.close()
    time.sleep(0.2)
    assert len(seen) == 1  # told once
    api.close(handle)


def test_exit_elsewhere_right_after_a_local_one_is_seen_in_time(
    api: Api, sim_state_dir: Path
) -> None:
    # This process's own exits do not make its watcher poll fast again (it announces them
    # itself); an exit made by another process just after one must still be seen within the
    # watcher's ceiling (0.4 s) plus a poll.
    local = api.running("local-vm")
    remote = api.running("remote-vm")
    exited: dict[str, float] = {}

    def callback_for(name: str) -> Any:
        @HCS_EVENT_CALLBACK
        def on_event(event: ctypes._Pointer[HCS_EVENT], context: int | None) -> None:
            if event.contents.Type == 1:  # HcsEventSystemExited
                exited.setdefault(name, time.monotonic())

        return on_event

    callbacks = [callback_for("local"), callback_for("remote")]
    assert api.HcsSetComputeSystemCallback(local, 0, None, callbacks[0]) == 0
    assert api.HcsSetComputeSystemCallback(remote, 0, None, callbacks[1]) == 0
    assert api.call("HcsTerminateComputeSystem", local, None)[0] == 0
    assert "local" in exited  # announced directly, before the operation completed
    env = {**os.environ, "HCS_SANDBOX_SIMULATOR": str(sim_state_dir)}
    result = subprocess.run(
        [sys.executable, "-c", KILLER, "remote-vm"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    done = time.monotonic()
    assert result.returncode == 0, result.stderr
    deadline = done + 5
    while "remote" not in exited and time.monotonic() < deadline:
        time.sleep(0.01)
    assert "remote" in exited, "the watcher did not see the other process's terminate"
    assert exited["remote"] - done < 1.5
    api.close(local)
    api.close(remote)


# ---- optional exports -------------------------------------------------------------------------


def test_crash_stops_the_system_with_unexpected_exit(api: Api) -> None:
    handle = api.running("crash-vm")
    events: list[int] = []

    @HCS_EVENT_CALLBACK
    def on_event(event: ctypes._Pointer[HCS_EVENT], context: int | None) -> None:
        events.append(event.contents.Type)

    assert api.HcsSetComputeSystemCallback(handle, 0, None, on_event) == 0
    hr, doc = api.call("HcsCrashComputeSystem", handle, '{"Type":"CrashGuest"}')
    assert hr == 0, doc
    assert events == [2, 1]  # SystemCrashInitiated, then SystemExited
    hr, doc = api.call("HcsCrashComputeSystem", handle, None)
    assert hr == H.HCS_E_SYSTEM_ALREADY_STOPPED
    out = ctypes.c_void_p()
    assert api.HcsWaitForComputeSystemExit(handle, 1000, ctypes.byref(out)) == 0
    status = json.loads(api.take(out) or "")
    assert status["ExitType"] == "UnexpectedExit"
    assert "GuestCrash" in status["Attribution"][0]
    api.close(handle)
    hr, _h, _doc = api.create("crash-created", vm_doc())
    assert hr == 0
    hr, doc = api.call("HcsCrashComputeSystem", _h, '{"Type":"Nope"}')
    assert hr == H.HCS_E_INVALID_JSON
    hr, doc = api.call("HcsCrashComputeSystem", _h, None)
    assert hr == H.HCS_E_INVALID_STATE, doc
    api.call("HcsTerminateComputeSystem", _h, None)
    api.close(_h)


def test_wait_for_compute_system_exit(api: Api) -> None:
    handle = api.running("wait-vm")
    out = ctypes.c_void_p()
    t0 = time.monotonic()
    hr = api.HcsWaitForComputeSystemExit(handle, 100, ctypes.byref(out)) & 0xFFFFFFFF
    assert hr == H.HCS_E_OPERATION_TIMEOUT
    assert time.monotonic() - t0 >= 0.09
    assert out.value is None
    timer = threading.Timer(0.1, lambda: api.call("HcsTerminateComputeSystem", handle, None))
    timer.start()
    assert api.HcsWaitForComputeSystemExit(handle, 0xFFFFFFFF, ctypes.byref(out)) == 0
    timer.join()
    assert json.loads(api.take(out) or "") == {"Status": 0, "ExitType": "ForcedExit"}
    api.close(handle)


def test_wait_for_process_exit(api: Api) -> None:
    handle = api.running("pwait-vm")
    proc = api.spawn(handle, "timeout /t 1")
    out = ctypes.c_void_p()
    hr = api.HcsWaitForProcessExit(proc.handle, 50, ctypes.byref(out)) & 0xFFFFFFFF
    assert hr == H.HCS_E_OPERATION_TIMEOUT
    assert api.HcsWaitForProcessExit(proc.handle, 10_000, ctypes.byref(out)) == 0
    status = json.loads(api.take(out) or "")
    assert status["Exited"] is True
    assert status["ProcessId"] == proc.pid
    proc.communicate()
    proc.close()
    api.call("HcsTerminateComputeSystem", handle, None)
    api.close(handle)


def test_vm_group_access_grants_every_vm(api: Api, tmp_path: Path) -> None:
    disk = tmp_path / "base.vhdx"
    disk.write_bytes(b"")
    doc = vm_doc(
        Devices={"Scsi": {"0": {"Attachments": {"0": {"Type": "VirtualDisk", "Path": str(disk)}}}}}
    )
    hr, handle, result = api.create("group-vm", doc)
    assert hr == H.E_ACCESSDENIED, result
    api.close(handle)
    assert api.HcsGrantVmGroupAccess(str(disk)) == 0
    hr, handle, result = api.create("group-vm", doc)
    assert hr == 0, result
    api.call("HcsTerminateComputeSystem", handle, None)
    api.close(handle)
    assert api.HcsRevokeVmGroupAccess(str(disk)) == 0
    hr, handle, result = api.create("group-vm-2", doc)
    assert hr == H.E_ACCESSDENIED, result
    api.close(handle)
    missing = str(tmp_path / "missing.vhdx")
    assert api.HcsGrantVmGroupAccess(missing) & 0xFFFFFFFF == H.ERROR_FILE_NOT_FOUND_HR
    assert api.HcsGrantVmGroupAccess(None) & 0xFFFFFFFF == H.E_INVALIDARG


def test_hcn_service_callback_hears_network_create_and_delete(api: Api) -> None:
    heard: list[tuple[int, int | None, str]] = []
    got_two = threading.Event()

    @HCN_NOTIFICATION_CALLBACK
    def on_note(kind: int, context: int | None, status: int, data: str | None) -> None:
        heard.append((kind, context, json.loads(data or "{}")["ID"]))
        if len(heard) == 2:
            got_two.set()

    registration = ctypes.c_void_p()
    assert api.HcnRegisterServiceCallback(on_note, 42, ctypes.byref(registration)) == 0
    net_id = "5a5bd3a0-9b66-4a3e-9b0e-3c8e1a7c0b11"
    network = ctypes.c_void_p()
    error = ctypes.c_void_p()
    hr = api.HcnCreateNetwork(
        ctypes.byref(guid(net_id)), '{"Name":"n"}', ctypes.byref(network), ctypes.byref(error)
    )
    assert hr == 0, api.take(error, "CoTaskMemFree")
    api.HcnCloseNetwork(network)
    assert api.HcnDeleteNetwork(ctypes.byref(guid(net_id)), ctypes.byref(error)) == 0
    assert got_two.wait(5)
    assert heard == [(2, 42, net_id), (4, 42, net_id)]
    assert api.HcnUnregisterServiceCallback(registration) == 0
    assert api.HcnUnregisterServiceCallback(registration) & 0xFFFFFFFF == H.E_HANDLE
    assert api.HcnRegisterServiceCallback(None, None, ctypes.byref(registration)) != 0


def test_hcn_notifications_arrive_in_the_order_they_happened(api: Api) -> None:
    """Many creates and deletes in a row: the service callback hears them in order (one
    delivery queue, not one pool job per notification, which two workers could swap)."""
    heard: list[tuple[int, str]] = []
    done = threading.Event()
    count = 6

    @HCN_NOTIFICATION_CALLBACK
    def on_note(kind: int, context: int | None, status: int, data: str | None) -> None:
        time.sleep(0.03)  # a slow listener: later ones queue up, the pool adds workers
        heard.append((kind, json.loads(data or "{}")["ID"]))
        if len(heard) == 2 * count:
            done.set()

    registration = ctypes.c_void_p()
    assert api.HcnRegisterServiceCallback(on_note, None, ctypes.byref(registration)) == 0
    expected: list[tuple[int, str]] = []
    error = ctypes.c_void_p()
    for i in range(count):
        net_id = f"5a5bd3a0-9b66-4a3e-9b0e-3c8e1a7c{i:04x}"
        network = ctypes.c_void_p()
        hr = api.HcnCreateNetwork(
            ctypes.byref(guid(net_id)), '{"Name":"n"}', ctypes.byref(network), ctypes.byref(error)
        )
        assert hr == 0, api.take(error, "CoTaskMemFree")
        api.HcnCloseNetwork(network)
        assert api.HcnDeleteNetwork(ctypes.byref(guid(net_id)), ctypes.byref(error)) == 0
        expected += [(2, net_id), (4, net_id)]
    assert done.wait(10)
    assert heard == expected
    assert api.HcnUnregisterServiceCallback(registration) == 0
