"""Compute-system state machine, events, properties, enumeration, service properties."""

from __future__ import annotations

import ctypes
import json
import threading

import pytest
from simapi import Api, vm_doc

from hcs_sandbox.sim import hresults as H
from hcs_sandbox.sim.exports import HCS_EVENT, HCS_EVENT_CALLBACK


def test_legal_transitions(api: Api) -> None:
    hr, handle, _ = api.create("vm1", vm_doc())
    assert hr == 0
    assert api.state(handle) == "Created"
    assert api.call("HcsStartComputeSystem", handle, None)[0] == 0
    assert api.state(handle) == "Running"
    assert api.call("HcsPauseComputeSystem", handle, None)[0] == 0
    assert api.state(handle) == "Paused"
    assert api.call("HcsResumeComputeSystem", handle, None)[0] == 0
    assert api.state(handle) == "Running"
    assert api.call("HcsTerminateComputeSystem", handle, None)[0] == 0
    props = json.loads(api.call("HcsGetComputeSystemProperties", handle, None)[1] or "")
    assert props["State"] == "Stopped"
    assert props["Stopped"] is True
    assert props["ExitType"] == "ForcedExit"
    api.close(handle)


@pytest.mark.parametrize(
    ("setup", "function", "expected"),
    [
        ([], "HcsPauseComputeSystem", H.HCS_E_INVALID_STATE),
        ([], "HcsResumeComputeSystem", H.HCS_E_INVALID_STATE),
        ([], "HcsSaveComputeSystem", H.HCS_E_INVALID_STATE),
        (["HcsStartComputeSystem"], "HcsStartComputeSystem", H.HCS_E_INVALID_STATE),
        (["HcsStartComputeSystem"], "HcsResumeComputeSystem", H.HCS_E_INVALID_STATE),
        (["HcsStartComputeSystem"], "HcsSaveComputeSystem", H.HCS_E_INVALID_STATE),
        (
            ["HcsStartComputeSystem", "HcsPauseComputeSystem"],
            "HcsStartComputeSystem",
            H.HCS_E_INVALID_STATE,
        ),
        (
            ["HcsStartComputeSystem", "HcsTerminateComputeSystem"],
            "HcsTerminateComputeSystem",
            H.HCS_E_SYSTEM_ALREADY_STOPPED,
        ),
        (
            ["HcsStartComputeSystem", "HcsTerminateComputeSystem"],
            "HcsShutDownComputeSystem",
            H.HCS_E_SYSTEM_ALREADY_STOPPED,
        ),
        (["HcsTerminateComputeSystem"], "HcsStartComputeSystem", H.HCS_E_INVALID_STATE),
    ],
)
def test_illegal_transitions(api: Api, setup: list[str], function: str, expected: int) -> None:
    _, handle, _ = api.create("vm2", vm_doc(GuestConnection={}))
    for step in setup:
        assert api.call(step, handle, None)[0] == 0
    hr, doc = api.call(function, handle, None)
    assert hr == expected
    error = json.loads(doc or "{}")
    assert error["Error"] & 0xFFFFFFFF == expected
    assert error["ErrorMessage"]
    api.call("HcsTerminateComputeSystem", handle, None)
    api.close(handle)


def test_duplicate_id_and_not_found(api: Api) -> None:
    _, handle, _ = api.create("dup", vm_doc())
    hr, other, doc = api.create("dup", vm_doc())
    assert hr == H.HCS_E_SYSTEM_ALREADY_EXISTS
    assert "dup" in (doc or "")
    api.close(other)
    out = ctypes.c_void_p()
    assert api.HcsOpenComputeSystem("nope", 0x10000000, ctypes.byref(out)) & 0xFFFFFFFF == (
        H.HCS_E_SYSTEM_NOT_FOUND
    )
    assert api.call("HcsTerminateComputeSystem", handle, None)[0] == 0
    # A stopped system disappears: it can no longer be opened.
    assert api.HcsOpenComputeSystem("dup", 0x10000000, ctypes.byref(out)) & 0xFFFFFFFF == (
        H.HCS_E_SYSTEM_NOT_FOUND
    )
    api.close(handle)


def test_save_only_when_paused_and_as_template(api: Api, tmp_path: object) -> None:
    handle = api.running("sv")
    hr, doc = api.call("HcsSaveComputeSystem", handle, json.dumps({"SaveType": "AsTemplate"}))
    assert hr == H.HCS_E_INVALID_STATE
    assert "still running" in (doc or "")
    assert api.call("HcsPauseComputeSystem", handle, None)[0] == 0
    assert api.call("HcsSaveComputeSystem", handle, json.dumps({"SaveType": "AsTemplate"}))[0] == 0
    assert api.state(handle) == "SavedAsTemplate"
    assert api.call("HcsTerminateComputeSystem", handle, None)[0] == 0
    api.close(handle)


def test_system_exited_event_and_callback_twice(api: Api) -> None:
    events: list[tuple[int, str, str]] = []
    got = threading.Event()

    @HCS_EVENT_CALLBACK
    def on_event(event: ctypes._Pointer[HCS_EVENT], context: int | None) -> None:
        events.append(
            (event.contents.Type, event.contents.EventData or "", threading.current_thread().name)
        )
        got.set()

    handle = api.running("ev", vm_doc(GuestConnection={}))
    assert api.HcsSetComputeSystemCallback(handle, 0, None, on_event) == 0
    hr = api.HcsSetComputeSystemCallback(handle, 0, None, on_event) & 0xFFFFFFFF
    assert hr == H.HCS_E_OPERATION_SYSTEM_CALLBACK_ALREADY_SET
    assert api.call("HcsShutDownComputeSystem", handle, None)[0] == 0
    assert got.wait(5)
    kind, data, thread = events[0]
    assert kind == 1  # HcsEventSystemExited
    assert json.loads(data) == {"Status": 0, "ExitType": "GracefulExit"}
    assert thread != threading.current_thread().name
    api.close(handle)


def test_shutdown_needs_guest_connection(api: Api) -> None:
    handle = api.running("noguest", vm_doc())
    hr, doc = api.call("HcsShutDownComputeSystem", handle, None)
    assert hr == H.ERROR_NOT_SUPPORTED_HR
    assert "GuestConnection" in (doc or "")
    assert api.state(handle) == "Running"
    api.call("HcsTerminateComputeSystem", handle, None)
    api.close(handle)


def test_terminate_on_last_handle_closed(api: Api) -> None:
    doc = vm_doc()
    doc["ShouldTerminateOnLastHandleClosed"] = True
    handle = api.running("tolhc", doc)
    second = ctypes.c_void_p()
    assert api.HcsOpenComputeSystem("tolhc", 0x10000000, ctypes.byref(second)) == 0
    api.close(handle)
    assert api.state(second.value or 0) == "Running"  # one handle is still open
    api.close(second.value or 0)
    out = ctypes.c_void_p()
    assert api.HcsOpenComputeSystem("tolhc", 0x10000000, ctypes.byref(out)) & 0xFFFFFFFF == (
        H.HCS_E_SYSTEM_NOT_FOUND
    )


def test_properties_and_enumerate(api: Api) -> None:
    a = api.running("enum-a")
    doc = vm_doc()
    doc["Owner"] = "other"
    _, b, _ = api.create("enum-b", doc)
    query = json.dumps({"PropertyTypes": ["Statistics", "Memory"]})
    hr, result = api.call("HcsGetComputeSystemProperties", a, query)
    assert hr == 0
    props = json.loads(result or "")
    assert props["Id"] == "enum-a"
    assert props["SystemType"] == "VirtualMachine"
    assert props["Statistics"]["Uptime100ns"] >= 0
    assert props["Memory"]["VirtualMachineMemory"]["AssignedMemory"] == 1024
    hr, listing = api.call("HcsEnumerateComputeSystems", None)
    assert hr == 0
    assert sorted(p["Id"] for p in json.loads(listing or "")) == ["enum-a", "enum-b"]
    hr, listing = api.call("HcsEnumerateComputeSystems", json.dumps({"Owners": ["other"]}))
    assert [p["Id"] for p in json.loads(listing or "")] == ["enum-b"]
    hr, result = api.call(
        "HcsGetComputeSystemProperties", a, json.dumps({"PropertyTypes": ["Basic"]})
    )
    assert hr == H.HCS_E_INVALID_JSON  # "Basic" is a service property type
    for handle in (a, b):
        api.call("HcsTerminateComputeSystem", handle, None)
        api.close(handle)


def test_service_properties_configurable(api: Api, sim: object) -> None:
    out = ctypes.c_void_p()
    assert (
        api.HcsGetServiceProperties(json.dumps({"PropertyTypes": ["Basic"]}), ctypes.byref(out))
        == 0
    )
    versions = json.loads(api.take(out) or "")["Properties"][0]["SupportedSchemaVersions"]
    assert {"Major": 2, "Minor": 6} in versions
    sim.set_supported_schema_versions([(2, 1)])  # type: ignore[attr-defined]
    assert api.HcsGetServiceProperties(None, ctypes.byref(out)) == 0
    versions = json.loads(api.take(out) or "")["Properties"][0]["SupportedSchemaVersions"]
    assert versions == [{"Major": 2, "Minor": 1}]


def test_modify_shares_and_memory(api: Api, share_dir: object) -> None:
    handle = api.running("mod")
    add = {
        "ResourcePath": "VirtualMachine/Devices/VirtualSmb/Shares",
        "RequestType": "Add",
        "Settings": {"Name": "s1", "Path": str(share_dir), "Options": {"ReadOnly": True}},
    }
    assert api.call("HcsModifyComputeSystem", handle, json.dumps(add), None)[0] == 0
    assert api.call("HcsModifyComputeSystem", handle, json.dumps(add), None)[0] == (
        H.ERROR_FILE_EXISTS_HR
    )
    remove = {**add, "RequestType": "Remove", "Settings": {"Name": "s1"}}
    assert api.call("HcsModifyComputeSystem", handle, json.dumps(remove), None)[0] == 0
    assert api.call("HcsModifyComputeSystem", handle, json.dumps(remove), None)[0] == (
        H.ERROR_NOT_FOUND_HR
    )
    memory = {"ResourcePath": "VirtualMachine/ComputeTopology/Memory/SizeInMB", "Settings": 2048}
    assert api.call("HcsModifyComputeSystem", handle, json.dumps(memory), None)[0] == 0
    props = json.loads(
        api.call("HcsGetComputeSystemProperties", handle, '{"PropertyTypes":["Memory"]}')[1] or ""
    )
    assert props["Memory"]["VirtualMachineMemory"]["AssignedMemory"] == 2048
    api.call("HcsTerminateComputeSystem", handle, None)
    api.close(handle)


def test_reserved_options_must_be_null(api: Api) -> None:
    # HcsStartComputeSystem.md, HcsResumeComputeSystem.md, HcsTerminateComputeSystem.md:
    # "options: Reserved for future use. Must be NULL." An empty string is what hcsshim passes.
    _, handle, _ = api.create("reserved-options", vm_doc(GuestConnection={}))
    for name in ("HcsStartComputeSystem", "HcsResumeComputeSystem", "HcsTerminateComputeSystem"):
        for options in ("{}", "garbage{", " "):
            assert api.call(name, handle, options) == (H.E_INVALIDARG, None), (name, options)
    assert api.state(handle) == "Created"  # nothing was done
    assert api.call("HcsStartComputeSystem", handle, "")[0] == 0
    assert api.call("HcsPauseComputeSystem", handle, '{"SuspensionLevel": "Suspend"}')[0] == 0
    assert api.call("HcsResumeComputeSystem", handle, None)[0] == 0
    assert api.state(handle) == "Running"
    assert api.call("HcsTerminateComputeSystem", handle, "")[0] == 0
    api.close(handle)


def test_terminate_process_options_must_be_null(api: Api) -> None:
    # HcsTerminateProcess.md: "options: Reserved for future use. Must be NULL."
    system = api.running("reserved-process")
    proc = api.spawn(system, "ping -n 100 127.0.0.1")
    assert proc.hr == 0, proc.doc
    assert api.call("HcsTerminateProcess", proc.handle, "{}") == (H.E_INVALIDARG, None)
    assert proc.status()["Exited"] is False
    assert api.call("HcsTerminateProcess", proc.handle, None)[0] == 0
    proc.communicate()
    api.HcsCloseProcess(proc.handle)
    api.call("HcsTerminateComputeSystem", system, None)
    api.close(system)


def test_open_requested_access_must_be_generic_all(api: Api) -> None:
    # HcsOpenComputeSystem.md: "requestedAccess: Reserved for future use, must be GENERIC_ALL."
    _, handle, _ = api.create("open-access", vm_doc())
    for access in (0, 0x1, 0x80000000, 0xFFFFFFFF):
        out = ctypes.c_void_p()
        hr = api.HcsOpenComputeSystem("open-access", access, ctypes.byref(out)) & 0xFFFFFFFF
        assert (hr, out.value) == (H.E_INVALIDARG, None), hex(access)
    out = ctypes.c_void_p()
    assert api.HcsOpenComputeSystem("open-access", 0x10000000, ctypes.byref(out)) == 0
    assert out.value
    api.close(out.value)
    api.call("HcsTerminateComputeSystem", handle, None)
    api.close(handle)
