"""ComputeSystem through the simulator: transitions, illegal transitions, documents."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from hcs_sandbox import errors
from hcs_sandbox.hcs import events
from hcs_sandbox.hcs.system import ComputeSystem, enumerate_compute_systems

MakeSystem = Callable[..., ComputeSystem]


def state(system: ComputeSystem) -> str:
    return str(system.properties()["State"])


def test_create_start_pause_resume_terminate(make_system: MakeSystem) -> None:
    system = make_system()
    props = system.properties()
    assert props["State"] == "Created"
    assert props["Id"] == system.id
    assert props["SystemType"] == "VirtualMachine"
    system.start()
    assert state(system) == "Running"
    system.pause({"SuspensionLevel": "Suspend"})
    assert state(system) == "Paused"
    system.resume()
    assert state(system) == "Running"
    assert not system.exited
    system.terminate()
    status = system.wait(10)
    assert system.exited
    assert status.get("ExitType") == "ForcedExit"
    assert system.exit_status == status


def test_pause_save_terminate(make_system: MakeSystem, tmp_path: Any) -> None:
    from hcs_sandbox.hcs import service

    system = make_system(start=True)
    system.pause({"SuspensionLevel": "Suspend", "HostedNotification": {"Reason": "Save"}})
    target = tmp_path / "saved.vmrs"
    service.create_empty_runtime_state_file(target)
    service.grant_vm_access(system.id, target)
    system.save({"SaveType": "ToFile", "SaveStateFilePath": str(target)})
    assert state(system) == "Paused"  # multipass integration test: still Paused after save


def test_properties_statistics_query(make_system: MakeSystem) -> None:
    system = make_system(start=True)
    props = system.properties({"PropertyTypes": ["Statistics"]})
    assert "Statistics" in props
    assert props["State"] == "Running"


def test_start_twice_is_invalid_state(make_system: MakeSystem) -> None:
    system = make_system(start=True)
    with pytest.raises(errors.InvalidStateError) as info:
        system.start()
    err = info.value
    assert err.hresult == 0x80370105
    assert err.function == "HcsStartComputeSystem"
    assert err.result_error is not None
    assert err.result_error.get("ErrorMessage")
    assert str(err.result_error["ErrorMessage"]) in str(err)
    assert system.id in str(err)


def test_save_running_is_invalid_state(make_system: MakeSystem, tmp_path: Any) -> None:
    system = make_system(start=True)
    with pytest.raises(errors.InvalidStateError, match="HcsSaveComputeSystem"):
        system.save({"SaveType": "ToFile", "SaveStateFilePath": str(tmp_path / "x.vmrs")})


def test_resume_running_is_invalid_state(make_system: MakeSystem) -> None:
    system = make_system(start=True)
    with pytest.raises(errors.InvalidStateError):
        system.resume()


def test_pause_created_is_invalid(make_system: MakeSystem) -> None:
    system = make_system()
    with pytest.raises(errors.HcsError) as info:
        system.pause()
    assert isinstance(info.value, errors.InvalidStateError)


def test_terminate_after_exit(make_system: MakeSystem) -> None:
    system = make_system(start=True)
    system.terminate()
    system.wait(10)
    with pytest.raises((errors.AlreadyStoppedError, errors.NotFoundError)):
        system.terminate()
    system.terminate(ignore_stopped=True)  # hcsshim: already stopped is fine here


def test_start_after_exit_fails(make_system: MakeSystem) -> None:
    system = make_system(start=True)
    system.terminate()
    system.wait(10)
    with pytest.raises(errors.HcsError) as info:
        system.start()
    assert isinstance(
        info.value, errors.AlreadyStoppedError | errors.InvalidStateError | errors.NotFoundError
    )


def test_shutdown_graceful(make_system: MakeSystem) -> None:
    system = make_system(start=True)
    system.shutdown()
    status = system.wait(10)
    assert status.get("ExitType") == "GracefulExit"


def test_shutdown_without_guest_connection_fails(make_system: MakeSystem) -> None:
    system = make_system(start=True, guest=False)
    with pytest.raises(errors.HcsError) as info:
        system.shutdown()
    assert info.value.function == "HcsShutDownComputeSystem"
    assert not system.exited


def test_modify_memory(make_system: MakeSystem) -> None:
    system = make_system(start=True)
    system.modify(
        {
            "ResourcePath": "VirtualMachine/ComputeTopology/Memory/SizeInMB",
            "RequestType": "Update",
            "Settings": 2048,
        }
    )


def test_duplicate_id(make_system: MakeSystem, vm_document: Callable[..., dict[str, Any]]) -> None:
    system = make_system()
    with pytest.raises(errors.AlreadyExistsError, match="HCS_E_SYSTEM_ALREADY_EXISTS"):
        ComputeSystem.create(system.id, vm_document())


def test_open_existing_and_missing(make_system: MakeSystem) -> None:
    system = make_system(start=True)
    with ComputeSystem.open(system.id) as other:
        assert other.properties()["State"] == "Running"
        # events reach every handle registered on the system
        system.terminate()
        assert other.wait(10).get("ExitType") == "ForcedExit"
    assert other.closed
    with pytest.raises(errors.NotFoundError, match="HCS_E_SYSTEM_NOT_FOUND"):
        ComputeSystem.open("no-such-system")


def test_document_unknown_key_rejected(
    new_id: Callable[[], str], vm_document: Callable[..., dict[str, Any]]
) -> None:
    doc = vm_document()
    doc["VirtualMachine"]["ComputeTopology"]["Memory"]["SizeInMBB"] = 1
    with pytest.raises(errors.InvalidJsonError) as info:
        ComputeSystem.create(new_id(), doc)
    assert "SizeInMBB" in str(info.value)
    assert info.value.function == "HcsCreateComputeSystem"
    assert info.value.remedy


def test_document_as_string(
    new_id: Callable[[], str], vm_document: Callable[..., dict[str, Any]]
) -> None:
    import json

    with ComputeSystem.create(new_id(), json.dumps(vm_document())) as system:
        assert system.properties()["State"] == "Created"


def test_enumerate(make_system: MakeSystem) -> None:
    a = make_system()
    b = make_system()
    ids = {p["Id"] for p in enumerate_compute_systems({"Owners": ["hcs-tests"]})}
    assert {a.id, b.id} <= ids
    only_a = enumerate_compute_systems({"Ids": [a.id]})
    assert [p["Id"] for p in only_a] == [a.id]


def test_close_is_idempotent_and_blocks_further_calls(make_system: MakeSystem) -> None:
    system = make_system()
    system.close()
    system.close()
    assert system.closed
    with pytest.raises(errors.HcsError, match="after it was closed"):
        system.start()
    with pytest.raises(errors.HcsError, match="closed"):
        system.wait(1)


def test_terminate_and_close(make_system: MakeSystem) -> None:
    system = make_system(start=True)
    before = events.registered_count()
    status = system.terminate_and_close(timeout=10)
    assert status is not None
    assert status.get("ExitType") == "ForcedExit"
    assert system.closed
    assert events.registered_count() == before - 1


def test_close_with_terminate(make_system: MakeSystem, new_id: Callable[[], str]) -> None:
    system = make_system(start=True)
    system_id = system.id
    system.close(terminate=True)
    assert system.closed
    assert not enumerate_compute_systems({"Ids": [system_id]})


def test_context_manager_closes(
    new_id: Callable[[], str], vm_document: Callable[..., dict[str, Any]]
) -> None:
    system_id = new_id()
    with ComputeSystem.create(system_id, vm_document()) as system:
        system.start()
    assert system.closed
    # ShouldTerminateOnLastHandleClosed: the system is gone with its last handle
    deadline = time.monotonic() + 5
    while enumerate_compute_systems({"Ids": [system_id]}) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not enumerate_compute_systems({"Ids": [system_id]})


def test_finalizer_closes_forgotten_handle(
    new_id: Callable[[], str], vm_document: Callable[..., dict[str, Any]]
) -> None:
    import gc

    before = events.registered_count()
    system = ComputeSystem.create(new_id(), vm_document())
    assert events.registered_count() == before + 1
    del system
    gc.collect()
    assert events.registered_count() == before


def test_events_queue_and_callback_thread(make_system: MakeSystem) -> None:
    system = make_system(start=True)
    q = system.events()
    seen: list[tuple[str, int]] = []
    token = system.subscribe(lambda e: seen.append((e.name, threading.get_ident())))
    system.terminate()
    event = q.get(timeout=10)
    assert event.name == "SystemExited"
    assert event.json() == system.wait(10)
    assert seen
    assert seen[0][0] == "SystemExited"
    assert seen[0][1] != threading.get_ident()  # delivered on an HCS (simulator) thread
    system.unsubscribe(token)


def test_wait_times_out(make_system: MakeSystem) -> None:
    system = make_system(start=True)
    t0 = time.monotonic()
    with pytest.raises(errors.OperationTimeoutError, match="to exit"):
        system.wait(0.1)
    assert time.monotonic() - t0 < 2


def test_callback_on_foreign_thread_while_caller_waits(make_system: MakeSystem) -> None:
    system = make_system(start=True)
    threads: list[int] = []
    system.subscribe(lambda e: threads.append(threading.get_ident()))
    waiter_result: list[dict[str, Any]] = []
    waiter = threading.Thread(target=lambda: waiter_result.append(system.wait(10)))
    waiter.start()
    time.sleep(0.05)
    system.terminate()
    waiter.join(10)
    assert waiter_result
    assert waiter_result[0]["ExitType"] == "ForcedExit"
    assert threads
    assert threads[0] not in {threading.get_ident(), waiter.ident}


def test_subscriber_exception_is_swallowed(make_system: MakeSystem) -> None:
    system = make_system(start=True)

    def bad(event: events.Event) -> None:
        raise RuntimeError("subscriber bug")

    system.subscribe(bad)
    system.terminate()
    assert system.wait(10)["ExitType"] == "ForcedExit"


def _exported(name: str) -> bool:
    from hcs_sandbox.native.loader import NativeUnavailable, get_backend

    try:
        get_backend().resolve("computecore.dll", name)
    except NativeUnavailable:
        return False
    return True


def test_crash_optional(make_system: MakeSystem) -> None:
    """HcsCrashComputeSystem (optional export): works, or gives the clear unavailable error."""
    system = make_system(start=True)
    if _exported("HcsCrashComputeSystem"):
        system.crash({"Type": "CrashGuest"})
    else:
        with pytest.raises(errors.HcsUnavailableError, match="HcsCrashComputeSystem"):
            system.crash({"Type": "CrashGuest"})


def test_wait_native_optional(make_system: MakeSystem) -> None:
    system = make_system(start=True)
    system.terminate()
    if _exported("HcsWaitForComputeSystemExit"):
        assert system.wait_native(5).get("ExitType") == "ForcedExit"
    else:
        with pytest.raises(errors.HcsUnavailableError, match="HcsWaitForComputeSystemExit"):
            system.wait_native(5)
    assert system.wait(10).get("ExitType") == "ForcedExit"


def test_reserved_arguments_are_null_and_generic_all(
    make_system: MakeSystem, sim: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The calls whose pages say "Reserved for future use. Must be NULL." (options of start,
    # resume, terminate, HcsTerminateProcess; HcsCreateComputeSystem's securityDescriptor)
    # or "must be GENERIC_ALL" (HcsOpenComputeSystem) get exactly that from the library.
    from hcs_sandbox.native.types import GENERIC_ALL

    seen: list[tuple[str, Any]] = []

    def spy(name: str, position: int) -> None:
        real = getattr(sim, name)

        def call(*args: Any) -> Any:
            seen.append((name, args[position]))
            return real(*args)

        monkeypatch.setattr(sim, name, call)

    for name in (
        "HcsStartComputeSystem",
        "HcsResumeComputeSystem",
        "HcsTerminateComputeSystem",
        "HcsTerminateProcess",
    ):
        spy(name, 2)
    spy("HcsCreateComputeSystem", 3)
    spy("HcsOpenComputeSystem", 1)
    system = make_system(start=True)
    system.pause()
    system.resume()
    with ComputeSystem.open(system.id) as other:
        assert state(other) == "Running"
    params = {"CommandLine": "ping -n 100 127.0.0.1", "CreateStdOutPipe": True}
    with system.create_process(params) as proc:
        assert proc.terminate() is True
        proc.wait(10)
    system.terminate()
    system.wait(10)
    calls = {name for name, _ in seen}
    assert len(calls) == 6, seen
    for name, value in seen:
        assert value == (GENERIC_ALL if name == "HcsOpenComputeSystem" else None), (name, value)


def test_reserved_options_refused_in_one_line(make_system: MakeSystem) -> None:
    # "options: Reserved for future use. Must be NULL." (HcsStartComputeSystem.md); the
    # simulator's E_INVALIDARG is UNCONFIRMED (docs/windows-notes.md#sim).
    system = make_system()
    with pytest.raises(errors.HcsError) as info:
        system.start({"Bogus": 1})
    message = str(info.value)
    assert "\n" not in message
    assert "HcsStartComputeSystem" in message
    assert "E_INVALIDARG" in message
    assert state(system) == "Created"
