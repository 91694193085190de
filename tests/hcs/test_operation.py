"""The operation helper: timeouts, faults, missing exports, the bare operation functions."""

from __future__ import annotations

import ctypes
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from hcs_sandbox import errors
from hcs_sandbox.hcs import operation
from hcs_sandbox.hcs._call import HRESULT_FROM_WIN32, check, native
from hcs_sandbox.hcs.system import ComputeSystem
from hcs_sandbox.native.strings import take_hcs_string
from hcs_sandbox.native.types import HCS_OPERATION_COMPLETION, HcsOperationType

MakeSystem = Callable[..., ComputeSystem]


def test_timeout_then_late_completion(make_system: MakeSystem, sim: Any) -> None:
    system = make_system()
    sim.set_latency("HcsStartComputeSystem", 0.5)
    t0 = time.monotonic()
    with pytest.raises(errors.OperationTimeoutError) as info:
        system.start(timeout=0.05)
    assert time.monotonic() - t0 < 0.45
    assert info.value.hresult == operation.HCS_E_OPERATION_TIMEOUT
    assert "still running" in str(info.value)
    assert operation.abandoned_count() >= 1
    # The call was not abandoned: HCS completes it and the reaper closes the operation.
    assert operation.wait_abandoned(5)
    assert operation.abandoned_count() == 0
    sim.set_latency("HcsStartComputeSystem", 0)
    assert system.properties()["State"] == "Running"


def test_the_reapers_log_lines_name_it(
    make_system: MakeSystem, sim: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A reaper's log lines carry its name, ``hcs-reaper-<function>``, as when it was a
    ``threading.Thread`` of that name, not the ``Dummy-N`` a ``_thread`` thread gets
    (review RV63 F3)."""
    system = make_system()
    sim.set_latency("HcsStartComputeSystem", 0.2)
    with caplog.at_level(logging.INFO, logger="hcs_sandbox.hcs"):
        with pytest.raises(errors.OperationTimeoutError):
            system.start(timeout=0.01)
        assert operation.wait_abandoned(5)
    sim.set_latency("HcsStartComputeSystem", 0)
    late = [r for r in caplog.records if "completed after its caller timed out" in r.message]
    assert [r.threadName for r in late] == ["hcs-reaper-HcsStartComputeSystem"]
    assert late[0].thread != threading.get_ident()  # (logged by the reaper, not the caller)


def test_close_while_call_in_flight_defers_handle_close(make_system: MakeSystem, sim: Any) -> None:
    system = make_system()
    sim.set_latency("HcsStartComputeSystem", 0.4)
    with pytest.raises(errors.OperationTimeoutError):
        system.start(timeout=0.05)
    system.close()  # the handle is still used by the in-flight start
    assert system.closed
    assert system._handle_guard.inflight == 1
    assert not system._handle_guard.released
    assert operation.wait_abandoned(5)
    assert system._handle_guard.released


def test_create_timeout_terminates_and_closes(
    new_id: Callable[[], str], sim: Any, vm_document: Callable[..., dict[str, Any]]
) -> None:
    from hcs_sandbox.hcs.system import enumerate_compute_systems

    system_id = new_id()
    sim.set_latency("HcsCreateComputeSystem", 0.4)
    with pytest.raises(errors.OperationTimeoutError, match="creating compute system"):
        ComputeSystem.create(system_id, vm_document(), timeout=0.05)
    assert operation.wait_abandoned(5)
    sim.set_latency("HcsCreateComputeSystem", 0)
    deadline = time.monotonic() + 5
    while enumerate_compute_systems({"Ids": [system_id]}) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not enumerate_compute_systems({"Ids": [system_id]})


def test_fault_at_call(make_system: MakeSystem, sim: Any) -> None:
    system = make_system()
    sim.inject("HcsStartComputeSystem", hresult=0x80370108, where="call")
    with pytest.raises(errors.ConnectFailedError, match="HcsStartComputeSystem"):
        system.start()
    system.start()  # times=1: the next call works
    assert system.properties()["State"] == "Running"


def test_fault_in_result(make_system: MakeSystem, sim: Any) -> None:
    system = make_system()
    sim.inject("HcsStartComputeSystem", hresult=0x80370100, where="result")
    with pytest.raises(errors.TerminatedError) as info:
        system.start()
    assert info.value.result_error is not None


def test_fault_access_denied_has_remedy(make_system: MakeSystem, sim: Any) -> None:
    system = make_system()
    sim.inject("HcsGetComputeSystemProperties", hresult=0x8037011B)
    with pytest.raises(errors.AccessDeniedError) as info:
        system.properties()
    assert "Administrator" in str(info.value)


def test_fault_on_create_closes_handle(
    new_id: Callable[[], str], sim: Any, vm_document: Callable[..., dict[str, Any]]
) -> None:
    sim.inject("HcsCreateComputeSystem", hresult=0x80370102, where="result")
    with pytest.raises(errors.ServiceNotAvailableError):
        ComputeSystem.create(new_id(), vm_document())
    # (the leak fixture checks that no system handle or operation was left open)


def test_hang_fault_times_out(make_system: MakeSystem, sim: Any) -> None:
    system = make_system()
    sim.inject("HcsPauseComputeSystem", hang=True)
    system.start()
    with pytest.raises(errors.OperationTimeoutError):
        system.pause(timeout=0.1)
    assert operation.abandoned_count() == 1
    sim.release_hangs()
    assert operation.wait_abandoned(5)


def test_missing_export_is_unavailable(make_system: MakeSystem, sim: Any) -> None:
    system = make_system()
    sim.hide_export("computecore.dll", "HcsPauseComputeSystem")
    with pytest.raises(errors.HcsUnavailableError) as info:
        system.pause()
    assert "HcsPauseComputeSystem" in str(info.value)
    assert info.value.remedy


def test_no_backend_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from hcs_sandbox.native import loader

    if sys.platform == "win32":
        pytest.skip("the real DLLs exist on Windows")
    loader.reset_backend()
    monkeypatch.delenv(loader.ENV_SIMULATOR, raising=False)
    with pytest.raises(errors.HcsUnavailableError) as info:
        ComputeSystem.open("x")
    assert "only on" in str(info.value)
    assert "--simulator" in (info.value.remedy or "")


def test_invalid_timeout() -> None:
    with pytest.raises(errors.SpecError):
        operation.timeout_ms(-1)
    with pytest.raises(errors.SpecError):
        operation.timeout_ms(float("nan"))
    assert operation.timeout_ms(1e12) == 0xFFFFFFFE
    assert operation.timeout_ms(0.25) == 250


def test_check_and_hresult_from_win32() -> None:
    check(0, function="X")
    check(1, function="X")  # S_FALSE is success
    with pytest.raises(errors.NotFoundError):
        check(HRESULT_FROM_WIN32(2), function="X")
    assert HRESULT_FROM_WIN32(0) == 0
    assert HRESULT_FROM_WIN32(5) == 0x80070005
    assert HRESULT_FROM_WIN32(0x80070005) == 0x80070005


def test_bare_operation_functions(make_system: MakeSystem) -> None:
    """HcsCreateOperation with a completion callback, HcsSetOperationCallback,
    HcsGetOperationType/Id, HcsGetOperationResult (pending and done) on a real call."""
    system = make_system()
    done = threading.Event()
    fired: list[int] = []

    def completed(op: int | None, context: int | None) -> None:
        fired.append(int(context or 0))
        done.set()

    cb = HCS_OPERATION_COMPLETION(completed)
    cc = "computecore"
    op = native(cc, "HcsCreateOperation")(None, HCS_OPERATION_COMPLETION())
    assert op
    try:
        hr = native(cc, "HcsSetOperationCallback")(op, 42, cb)
        check(int(hr), function="HcsSetOperationCallback")
        doc = ctypes.c_void_p(None)
        hr = native(cc, "HcsGetOperationResult")(op, ctypes.byref(doc))
        take_hcs_string(doc)
        assert int(hr) & 0xFFFFFFFF == 0x80370115  # HCS_E_OPERATION_NOT_STARTED
        hr = native(cc, "HcsGetComputeSystemProperties")(system.handle, op, None)
        check(int(hr), function="HcsGetComputeSystemProperties")
        assert native(cc, "HcsGetOperationType")(op) == HcsOperationType.GET_PROPERTIES
        assert native(cc, "HcsGetOperationId")(op) not in (0, 0xFFFFFFFFFFFFFFFF)
        assert done.wait(5)
        assert fired == [42]
        doc = ctypes.c_void_p(None)
        hr = native(cc, "HcsGetOperationResult")(op, ctypes.byref(doc))
        text = take_hcs_string(doc)
        check(int(hr), function="HcsGetOperationResult", result_document=text)
        assert text
        assert system.id in text
    finally:
        native(cc, "HcsCloseOperation")(op)


def _timeout_ms_reference(timeout: float) -> int:
    """timeout_ms before its fast path (4748fac), for the equivalence test."""
    import math

    if math.isnan(timeout) or timeout < 0:
        raise errors.SpecError("bad timeout")
    return min(round(timeout * 1000), 0xFFFFFFFF - 1)


@pytest.mark.parametrize(
    "timeout",
    [
        0,
        0.0,
        0.0004,
        0.0005,
        0.0015,
        0.25,
        1,
        3,
        2.5,
        240.0,
        4294967.0 - 1e-6,
        4294967.0,
        4294967.2945,
        4294967.2955,
        4294967.296,
        1e12,
        2**40,
    ],
)
def test_timeout_ms_fast_path_equals_the_full_check(timeout: float) -> None:
    assert operation.timeout_ms(timeout) == _timeout_ms_reference(timeout)


@pytest.mark.parametrize("timeout", [-1, -0.0001, float("nan"), float("-inf")])
def test_timeout_ms_still_refuses(timeout: float) -> None:
    with pytest.raises(errors.SpecError):
        operation.timeout_ms(timeout)


def test_operation_functions_are_resolved_again_for_a_new_backend(
    make_system: MakeSystem,
) -> None:
    """The (HcsCreateOperation, HcsWaitForOperationResult, HcsCloseOperation) cache is keyed
    by the backend object: reset_backend / use_simulator make a new one, which misses."""
    from hcs_sandbox.native import loader

    system = make_system()
    system.properties()
    first = operation._op_functions()
    assert first[0] is loader._backend
    assert first[1:] == (
        native("computecore", "HcsCreateOperation"),
        native("computecore", "HcsWaitForOperationResult"),
        native("computecore", "HcsCloseOperation"),
    )
    assert operation._op_functions() is first  # a hit: the same entry

    old = loader._backend
    loader.use_simulator(loader._forced_simulator)  # same state directory, a new backend
    new = loader.get_backend()
    assert new is not old
    second = operation._op_functions()
    assert second is not first
    assert second[0] is new
    assert second[1] is native("computecore", "HcsCreateOperation")
    assert second[1] is not first[1]  # built again for the new backend
    assert system.properties()["State"]  # operations still work through the new entry
