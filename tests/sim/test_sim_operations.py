"""Operation handles: states, timeouts, callbacks from worker threads."""

from __future__ import annotations

import ctypes
import threading

from simapi import Api, vm_doc

from hcs_sandbox.sim import hresults as H
from hcs_sandbox.sim.exports import HCS_OPERATION_COMPLETION


def test_null_operation_is_invalid_arg(api: Api) -> None:
    handle = ctypes.c_void_p()
    hr = api.HcsCreateComputeSystem("x", "{}", None, None, ctypes.byref(handle)) & 0xFFFFFFFF
    assert hr == H.E_INVALIDARG


def test_wait_on_unused_operation_is_not_started(api: Api) -> None:
    op = api.HcsCreateOperation(None, None)
    hr, _doc = api.wait(op, 0)
    assert hr == H.HCS_E_OPERATION_NOT_STARTED
    api.HcsCloseOperation(op)


def test_cancel_is_not_implemented_and_type_id(api: Api) -> None:
    op = api.HcsCreateOperation(None, None)
    assert api.HcsCancelOperation(op) & 0xFFFFFFFF == H.E_NOTIMPL
    assert api.HcsGetOperationType(op) == -1
    assert api.HcsGetOperationId(op) > 0
    api.HcsCloseOperation(op)


def test_pending_in_use_timeout_then_completion(api: Api, sim: object) -> None:
    sim.set_latency("HcsCreateComputeSystem", 0.3)  # type: ignore[attr-defined]
    op = api.HcsCreateOperation(None, None)
    handle = ctypes.c_void_p()
    import json

    assert (
        api.HcsCreateComputeSystem("p", json.dumps(vm_doc()), op, None, ctypes.byref(handle)) == 0
    )
    assert api.HcsGetOperationType(op) == 1  # HcsOperationTypeCreate
    result = ctypes.c_void_p()
    assert api.HcsGetOperationResult(op, ctypes.byref(result)) & 0xFFFFFFFF == (
        H.HCS_E_OPERATION_PENDING
    )
    assert result.value is None
    assert api.wait(op, 10)[0] == H.HCS_E_OPERATION_TIMEOUT
    again = api.HcsStartComputeSystem(handle, op, None) & 0xFFFFFFFF
    assert again == H.HCS_E_OPERATION_ALREADY_STARTED
    assert api.wait(op, 5000) == (0, None)  # the timed-out operation kept running
    # A completed operation may be reused.
    assert api.HcsStartComputeSystem(handle, op, None) == 0
    assert api.wait(op) == (0, None)
    api.HcsCloseOperation(op)
    hr, _ = api.call("HcsTerminateComputeSystem", handle.value, None)
    assert hr == 0
    api.close(handle.value or 0)


def test_completion_callback_runs_on_another_thread(api: Api) -> None:
    seen: list[tuple[int, int | None, str]] = []
    done = threading.Event()

    @HCS_OPERATION_COMPLETION
    def on_done(operation: int, context: int | None) -> None:
        result = ctypes.c_void_p()
        hr = api.HcsGetOperationResult(operation, ctypes.byref(result))
        api.take(result)
        seen.append((hr, context, threading.current_thread().name))
        api.HcsCloseOperation(operation)  # closing inside the callback is allowed
        done.set()

    op = api.HcsCreateOperation(1234, on_done)
    handle = ctypes.c_void_p()
    import json

    assert (
        api.HcsCreateComputeSystem("cb", json.dumps(vm_doc()), op, None, ctypes.byref(handle)) == 0
    )
    assert done.wait(5)
    assert seen[0][0] == 0
    assert seen[0][1] == 1234
    assert seen[0][2] != threading.current_thread().name
    assert api.call("HcsTerminateComputeSystem", handle.value, None)[0] == 0
    api.close(handle.value or 0)


def test_system_operation_callbacks_conflict_with_own_callback(api: Api) -> None:
    from hcs_sandbox.sim.exports import HCS_EVENT, HCS_EVENT_CALLBACK

    events: list[tuple[int, int]] = []
    got = threading.Event()

    @HCS_EVENT_CALLBACK
    def on_event(event: ctypes._Pointer[HCS_EVENT], context: int | None) -> None:
        events.append((event.contents.Type, event.contents.Operation or 0))
        got.set()

    _, handle, _ = api.create("opcb", vm_doc())
    assert api.HcsSetComputeSystemCallback(handle, 1, None, on_event) == 0

    @HCS_OPERATION_COMPLETION
    def never(operation: int, context: int | None) -> None:  # pragma: no cover
        pass

    op = api.HcsCreateOperation(None, never)
    hr = api.HcsStartComputeSystem(handle, op, None) & 0xFFFFFFFF
    assert hr == H.HCS_E_OPERATION_SYSTEM_CALLBACK_ALREADY_SET
    api.HcsCloseOperation(op)
    op = api.HcsCreateOperation(None, None)
    assert api.HcsStartComputeSystem(handle, op, None) == 0
    assert got.wait(5)
    assert events[0] == (0x01000000, op)
    api.HcsCloseOperation(op)
    assert api.call("HcsTerminateComputeSystem", handle, None)[0] == 0
    api.close(handle)
