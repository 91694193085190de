"""A Ctrl+C at any point never leaks or double-closes an HCS or HCN handle (review RV59).

The harness of ``test_storage.py`` (review RV50 F3), generalised (now shared, in
``tests/ctrlc_trace.py``): one ``KeyboardInterrupt`` is raised at the ``n``-th point of the
library's own frames, for every ``n`` in turn,

- for the makers of every handle kind (``HcsCreateOperation``, ``HcsCreateComputeSystem``,
  ``HcsOpenComputeSystem``, ``HcsCreateProcess``, ``HcsOpenProcess``, ``HcnCreateNetwork``,
  ``HcnOpenNetwork``, ``HcnCreateEndpoint``, ``HcnOpenEndpoint``) from the return of the
  simulator's export on, and
- for the owners' ``close()`` (``ComputeSystem``, ``Process``, ``Network``, ``Endpoint``,
  ``Vhd``: ``HandleGuard.close``) from its entry on;

then the program goes on as a program that caught it would (an interrupted ``close()`` is
called again, the objects are dropped) and the simulator must hold no handle of ours and
have seen no misuse (a second close of a handle is one), and a close function must have run
exactly once per handle.  Points are raised in the library's frames only, never in the
simulator's (its exports run as ctypes callbacks, as the real DLLs run native code; a SIGINT
at a thunk's entry is the simulator's documented entry window, docs/simulator.md).
"""

from __future__ import annotations

import ctypes
import gc
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ctrlc_trace import InterruptAfterSim
from hcs_sandbox.hcs import network, storage
from hcs_sandbox.hcs.system import ComputeSystem, enumerate_compute_systems
from hcs_sandbox.native import handles


def nat() -> dict[str, Any]:
    """A NAT network document with a new name (HNS refuses a second network of one name)."""
    return {**_NAT, "Name": f"hcs-ctrlc-{uuid.uuid4()}"}


_NAT = {
    "Name": "hcs-ctrlc-nat",
    "Type": "NAT",
    "Ipams": [{"Type": "Static", "Subnets": [{"IpAddressPrefix": "192.168.101.0/24"}]}],
    "SchemaVersion": {"Major": 2, "Minor": 0},
}
ENDPOINT = {"Name": "ep", "SchemaVersion": {"Major": 2, "Minor": 0}}
#: No stdio pipes: those are test_ctrl_c_from_the_wait_that_returns_the_pipes's and
#: test_ctrl_c_while_hcs_runs_the_create_process's.
PROCESS = {"CommandLine": "cmd /c echo hi"}

#: The close helpers that set the c_void_p to NULL right before the native close, with no
#: handler point between: the every-bytecode variant raises nowhere inside them but at
#: their handler points (their entry, after a call), as CPython does.
_EXEMPT = frozenset(
    f.__code__ for f in (handles.close_handle, getattr(handles, "close_held", None)) if f
)  # (getattr: the test runs on the code before close_held too, to show it fails there)


class _InterruptOnce(InterruptAfterSim):
    """``tests/ctrlc_trace.py``'s tracer, from the return of ``export`` (or the entry of
    ``target``) to the return of ``target``: with ``every_bytecode`` every instruction is a
    point too, but in the frames of ``_EXEMPT``."""

    def __init__(self, export: str | None, target: Any, n: int, *, every_bytecode: bool) -> None:
        super().__init__(export, target, n, every_bytecode=every_bytecode, exempt=_EXEMPT)


def _handles_of(leaks: dict[str, int]) -> dict[str, int]:
    """The open HCS/HCN handles of a ``sim.leaks()`` (its unfreed strings are judged by the
    root conftest after each test and by ``test_ctrl_c_in_the_result_documents_free``; a
    process's stdio pipes are not this test's: see the report of review RV59's task)."""
    return {
        kind: n for kind, n in leaks.items() if not kind.startswith("string") and kind != "pipe"
    }


def _handles(sim: Any) -> dict[str, int]:
    return _handles_of(sim.leaks())


def _close_counts(sim: Any) -> int:
    calls = sim.calls()
    return sum(
        calls.get(name, 0)
        for name in (
            "HcsCloseOperation",
            "HcsCloseComputeSystem",
            "HcsCloseProcess",
            "HcnCloseNetwork",
            "HcnCloseEndpoint",
            "CloseHandle",
        )
    )


def _sweep(
    sim: Any,
    export: str | None,
    target: Any,
    run: Callable[[], Any],
    *,
    every_bytecode: bool,
    settle: Callable[[], None] = lambda: None,
) -> tuple[int, list[str]]:
    """Run ``run()`` once per point with an interrupt there; returns the number of points
    and the points after which a handle leaked or the simulator saw misuse.  ``run()``
    returns a clean-up (called after the interrupt, as a program that caught it goes on)
    or None; ``settle()`` then drops what the test itself holds."""
    failures: list[str] = []
    n = 0
    while True:
        n += 1
        before = sim.leaks()
        result: list[Any] = []
        with _InterruptOnce(export, target, n, every_bytecode=every_bytecode) as at:
            try:
                result.append(run())
            except KeyboardInterrupt:
                pass
        if at.where is None:
            assert 0 < at.count < n  # (a run may pass fewer points: threads, events)
            if result and callable(result[0]):
                result[0]()
            result.clear()
            gc.collect()
            assert sim.leaks() == before
            break
        if result and callable(result[0]):
            result[0]()  # (no interrupt: not reached)
        result.clear()
        settle()
        # An operation the interrupt found started and not seen complete is the reaper's
        # (review RV63 F2): judged once it is done.
        reaped = _reaped_by_another_thread()
        gc.collect()
        leaks = _handles(sim)
        violations = sim.violations()
        if leaks != _handles_of(before) or violations or reaped is not True:
            failures.append(
                f"{at.where}: leaks {leaks} (before {before}), {violations}, reaped {reaped}"
            )
            sim.reset()
            return n, failures  # (the state is gone: stop at the first)
    return n - 1, failures


# -- the makers ----------------------------------------------------------------------------


def test_ctrl_c_after_hcs_create_operation(sim: Any) -> None:
    """(Handler points only: every bytecode would raise in ``_run``'s ``finally`` as the
    body returned, at an instruction that is no handler point and that the ``try`` does not
    cover, where no Ctrl+C can be raised.)"""
    enumerate_compute_systems()  # (resolved: every run takes the same path)
    n, failures = _sweep(
        sim,
        "HcsCreateOperation",
        enumerate_compute_systems,
        lambda: enumerate_compute_systems() and None,
        every_bytecode=False,
    )
    assert failures == [], f"{len(failures)} of {n} points: " + "; ".join(failures)


def test_ctrl_c_after_hcs_create_compute_system(sim: Any, vm_document: Any) -> None:
    def run() -> Any:
        system = ComputeSystem.create(f"ctrlc-{uuid.uuid4()}", vm_document())
        return system.close

    ComputeSystem.create(f"ctrlc-{uuid.uuid4()}", vm_document()).close()
    n, failures = _sweep(
        sim, "HcsCreateComputeSystem", ComputeSystem.create.__func__, run, every_bytecode=False
    )
    assert failures == [], f"{len(failures)} of {n} points: " + "; ".join(failures)


@pytest.mark.parametrize("every_bytecode", [False], ids=["handler-points"])
def test_ctrl_c_after_hcs_open_compute_system(
    sim: Any, vm_document: Any, every_bytecode: bool
) -> None:
    system_id = f"ctrlc-{uuid.uuid4()}"
    with ComputeSystem.create(system_id, vm_document()):
        ComputeSystem.open(system_id).close()
        n, failures = _sweep(
            sim,
            "HcsOpenComputeSystem",
            ComputeSystem.open.__func__,
            lambda: ComputeSystem.open(system_id).close,
            every_bytecode=every_bytecode,
        )
    assert failures == [], f"{len(failures)} of {n} points: " + "; ".join(failures)


def test_ctrl_c_after_hcs_create_and_open_process(sim: Any, vm_document: Any) -> None:
    from hcs_sandbox.hcs.process import Process

    with ComputeSystem.create(f"ctrlc-{uuid.uuid4()}", vm_document()) as system:
        system.start()
        system.create_process(PROCESS).close()
        n, failures = _sweep(
            sim,
            "HcsCreateProcess",
            Process._create.__func__,
            lambda: system.create_process(PROCESS).close,
            every_bytecode=False,
        )
        assert failures == [], f"{len(failures)} of {n} points: " + "; ".join(failures)
        with system.create_process({"CommandLine": "cmd /c pause"}) as held:
            system.open_process(held.pid).close()
            n, failures = _sweep(
                sim,
                "HcsOpenProcess",
                Process._open.__func__,
                lambda: system.open_process(held.pid).close,
                every_bytecode=False,
            )
            held.terminate()
    assert failures == [], f"{len(failures)} of {n} points: " + "; ".join(failures)


def test_ctrl_c_after_hcn_makers(sim: Any) -> None:
    every_bytecode = False  # (the every-bytecode variant: HcsOpenComputeSystem's test)
    made: list[str] = []

    def create_network() -> Any:
        net_id = str(uuid.uuid4())
        made.append(net_id)
        return network.Network.create(net_id, nat()).close

    network.Network.create(str(uuid.uuid4()), nat()).close()
    results = [
        _sweep(
            sim,
            "HcnCreateNetwork",
            network._HcnObject._from_call.__func__,
            create_network,
            every_bytecode=every_bytecode,
        )
    ]
    net_id = str(uuid.uuid4())
    with network.Network.create(net_id, nat()) as net:
        results.append(
            _sweep(
                sim,
                "HcnOpenNetwork",
                network._HcnObject._from_call.__func__,
                lambda: network.Network.open(net_id).close,
                every_bytecode=every_bytecode,
            )
        )

        def create_endpoint() -> Any:
            return network.Endpoint.create(net, uuid.uuid4(), ENDPOINT).close

        results.append(
            _sweep(
                sim,
                "HcnCreateEndpoint",
                network._HcnObject._from_call.__func__,
                create_endpoint,
                every_bytecode=every_bytecode,
            )
        )
        ep_id = uuid.uuid4()
        network.Endpoint.create(net, ep_id, ENDPOINT).close()
        results.append(
            _sweep(
                sim,
                "HcnOpenEndpoint",
                network._HcnObject._from_call.__func__,
                lambda: network.Endpoint.open(ep_id).close,
                every_bytecode=every_bytecode,
            )
        )
    failures = [f for _, fs in results for f in fs]
    assert failures == [], f"{len(failures)} of {[n for n, _ in results]} points: " + "; ".join(
        failures
    )


# -- HandleGuard.close of each owner ---------------------------------------------------------


def _sweep_close(
    sim: Any,
    make: Callable[[], Any],
    close_function: str,
    *,
    every_bytecode: bool,
    again: bool = True,
) -> tuple[int, list[str]]:
    """Interrupt ``obj.close()`` at each point of it; then close it again (``again``; not:
    a ``with`` block's ``__exit__`` closes once, review RV61 F1) and drop it: the handle
    must be closed exactly once (``close_function`` called once), nothing leaked.
    Stops at the first failure (the simulator is reset then)."""
    n = 0
    while True:
        n += 1
        baseline = _handles(sim)  # (what the test holds: a network, a system)
        obj = make()
        before = sim.calls().get(close_function, 0)
        with _InterruptOnce(None, type(obj).close, n, every_bytecode=every_bytecode) as at:
            try:
                obj.close()
            except KeyboardInterrupt:
                pass
        if again:
            obj.close()  # the program goes on: a clean-up closes it again (idempotent) ...
        del obj  # ... and forgets it (its finalizer is the safety net)
        gc.collect()
        closes = sim.calls().get(close_function, 0) - before
        leaks = _handles(sim)
        violations = sim.violations()
        if leaks != baseline or violations or closes != 1:
            sim.reset()
            return n, [f"{at.where}: leaks {leaks}, {closes} close(s), {violations}"]
        if at.where is None:
            assert 0 < at.count < n  # (a run may pass fewer points: threads, events)
            return n - 1, []


@pytest.mark.parametrize("again", [True, False], ids=["closed-again", "closed-once"])
@pytest.mark.parametrize("every_bytecode", [False], ids=["handler-points"])
def test_ctrl_c_in_the_owners_close(
    sim: Any, vm_document: Any, tmp_path: Path, every_bytecode: bool, again: bool
) -> None:
    storage.create_vhdx(tmp_path / "d.vhdx", 1024**3)
    nets: list[Any] = []

    def net() -> Any:  # (made again after a reset)
        if not nets or nets[-1].closed or _handles(sim) == {}:
            nets.append(network.Network.create(str(uuid.uuid4()), nat()))
        return nets[-1]

    owners: dict[str, tuple[Callable[[], Any], str]] = {
        "ComputeSystem": (
            lambda: ComputeSystem.create(f"ctrlc-{uuid.uuid4()}", vm_document()),
            "HcsCloseComputeSystem",
        ),
        "Network": (lambda: network.Network.open(net().id), "HcnCloseNetwork"),
        "Endpoint": (
            lambda: network.Endpoint.create(net(), uuid.uuid4(), ENDPOINT),
            "HcnCloseEndpoint",
        ),
        "Vhd": (lambda: storage.open_vhd(tmp_path / "d.vhdx"), "CloseHandle"),
    }
    report: dict[str, tuple[int, list[str]]] = {}
    for name, (make, close_function) in owners.items():
        make().close()
        report[name] = _sweep_close(
            sim, make, close_function, every_bytecode=every_bytecode, again=again
        )
        if nets:
            nets.pop().close()
        nets.clear()
    with ComputeSystem.create(f"ctrlc-{uuid.uuid4()}", vm_document()) as system:
        system.start()
        system.create_process(PROCESS).close()
        report["Process"] = _sweep_close(
            sim,
            lambda: system.create_process(PROCESS),
            "HcsCloseProcess",
            every_bytecode=every_bytecode,
            again=again,
        )
        if report["Process"][1]:
            system.close()  # (reset: the handle is the simulator's no more)
    failing = {name: fs for name, (_, fs) in report.items() if fs}
    assert failing == {}, {name: (n, fs) for name, (n, fs) in report.items()}


# -- the timeout's hand-off to the reaper (review RV61 F2) -----------------------------------

#: HCS completes the start this long after it was made; the caller waits far less.
_LATE = 0.1
_WAIT = 0.01


def _reaped_by_another_thread() -> str | bool:
    """True once every abandoned operation is closed by its reaper, seen from another thread
    that takes the reaper's lock first; else what is wrong.  (Not ``wait_abandoned()``: its
    ``Condition.wait`` releases the lock even when a Ctrl+C left it held by this thread,
    which hid that the reaper was stuck for ever (review RV63 F1); nor any call here that
    takes the lock: a lock held for ever would hang the test instead of failing it.)"""
    import threading

    from hcs_sandbox.hcs import operation

    seen: list[str | bool] = []

    def look() -> None:
        if not operation._abandoned_lock.acquire(timeout=2):
            seen.append("the reaper's lock is held (by the interrupted thread) for ever")
            return
        operation._abandoned_lock.release()
        deadline = time.monotonic() + 5
        while operation.abandoned_count():  # (sleeps: it never releases a lock of ours)
            if time.monotonic() > deadline:
                seen.append("the reaper did not close the operation within 5 s")
                return
            time.sleep(0.005)
        seen.append(True)

    looker = threading.Thread(target=look, name="ctrlc-looker", daemon=True)
    looker.start()
    looker.join(10)
    return seen[0] if seen else "the looking thread hung"


@pytest.mark.parametrize("export", ["HcsWaitForOperationResult", "HcsStartComputeSystem"])
def test_ctrl_c_from_the_timeout_to_the_reapers_start(
    sim: Any, vm_document: Any, export: str
) -> None:
    """A Ctrl+C at each handler point from the return of the wait that timed out to the
    return of ``_run`` (the reaper's start is in between): the timed-out operation is closed
    once, by one side, and the compute system's guard is not left with a call in flight, so
    closing the system closes its handle (review RV61 F2: a Ctrl+C between ``abandoned =
    True`` and the reaper's start leaked the operation, and the guard's count deferred the
    system's close for ever).  HCS is asked to cancel it at every point from the wait's
    return (review RV69 F6).  With ``HcsStartComputeSystem`` the points start at the tracked
    call's return: those before the wait close the running operation at once, which cancels
    it (HcsCloseOperation.md), as before review RV63 F2's change: no reaper lets a start run
    on while the sandbox layer rolls back as if it had not (review RV73 F1)."""
    from hcs_sandbox import errors
    from hcs_sandbox.hcs import operation

    failures: list[str] = []
    points: list[str] = []
    n = 0
    sim.set_latency("HcsStartComputeSystem", _LATE)
    with (  # (resolved: every run takes the same path)
        ComputeSystem.create(f"ctrlc-{uuid.uuid4()}", vm_document()) as system,
        pytest.raises(errors.OperationTimeoutError),
    ):
        system.start(timeout=_WAIT)
    assert operation.wait_abandoned(5)
    while not failures:
        n += 1
        baseline = _handles(sim)
        system = ComputeSystem.create(f"ctrlc-{uuid.uuid4()}", vm_document())
        closes = sim.calls().get("HcsCloseOperation", 0)
        cancels = sim.calls().get("HcsCancelOperation", 0)
        waits = sim.calls().get("HcsWaitForOperationResult", 0)
        with _InterruptOnce(export, operation._run, n, every_bytecode=False) as at:
            try:
                system.start(timeout=_WAIT)
            except KeyboardInterrupt:
                points.append(str(at.where))
            except errors.OperationTimeoutError:
                assert at.where is None
        # Interrupted before its wait (HCS still running the start): closed at once, no
        # reaper (the reaper's waits come only after a caller's wait that timed out).
        before_wait = sim.calls().get("HcsWaitForOperationResult", 0) == waits
        handed = operation.abandoned_count()
        guard = system._handle_guard
        system.close()  # the program goes on: it closes the system ...
        reaped = _reaped_by_another_thread()  # ... and HCS completes the start
        del system
        gc.collect()
        state = {
            "reaped": reaped,
            "inflight": guard.inflight,
            "released": guard.released,
            "operation closes": sim.calls().get("HcsCloseOperation", 0) - closes,
            # HCS was asked to cancel it on a timeout (review RV69 F6); before the wait,
            # closing it at once cancels it
            "cancelled": sim.calls().get("HcsCancelOperation", 0) > cancels,
            "handed to a reaper": handed > 0,
            "handles": _handles(sim),
            "violations": sim.violations(),
        }
        want = {
            "reaped": True,
            "inflight": 0,
            "released": True,
            "operation closes": 1,
            "cancelled": not before_wait,
            "handed to a reaper": not before_wait,
            "handles": baseline,
            "violations": [],
        }
        if state != want:
            failures.append(f"{at.where}: {state}")
            sim.reset()
        elif at.where is None:
            assert 0 < at.count < n
            break
    sim.set_latency("HcsStartComputeSystem", 0)
    assert failures == [], f"of {n} points: " + "; ".join(failures)
    # (the sweep went through the hand-off: points in _abandon, one after its reaper start)
    assert any(p.startswith("_abandon ") for p in points), points
    assert any(p.startswith("_run ") for p in points), points
    if export == "HcsStartComputeSystem":  # (and the points before the wait)
        assert any(p.startswith("run_handle_operation.<locals>.invoke ") for p in points)


# -- the result document's free (native/strings.py) ------------------------------------------


def test_ctrl_c_in_the_result_documents_free(sim: Any) -> None:
    """A Ctrl+C at each handler point from the return of the wait to the return of ``_run``
    of an operation with a result document: the document is freed, once (the slot is set to
    NULL right before the native free, with no handler point between, so the ``finally``
    that frees what the slot still holds never leaks it nor frees it twice)."""
    from hcs_sandbox.hcs import operation

    enumerate_compute_systems()  # (resolved: every run takes the same path)
    assert sim.calls().get("LocalFree", 0) > 0  # (it has a result document to free)
    n = 0
    while True:
        n += 1
        before = sim.leaks()
        with _InterruptOnce(
            "HcsWaitForOperationResult", operation._run, n, every_bytecode=False
        ) as at:
            try:
                enumerate_compute_systems()
            except KeyboardInterrupt:
                pass
        gc.collect()
        leaks, violations = sim.leaks(), sim.violations()
        if leaks != before or violations:
            sim.reset()
            pytest.fail(f"of {n} points: {at.where}: leaks {leaks} (before {before}), {violations}")
        if at.where is None:
            assert 0 < at.count < n
            break


# -- a new process's stdio pipes (hcs/process.py) --------------------------------------------

PIPED = {
    "CommandLine": "cmd /c pause",
    "CreateStdInPipe": True,
    "CreateStdOutPipe": True,
    "CreateStdErrPipe": True,
}


def test_ctrl_c_from_the_wait_that_returns_the_pipes(sim: Any, vm_document: Any) -> None:
    """A Ctrl+C at each handler point from the return of the wait that hands over a new
    process's stdio pipe handles to the return of ``Process._create``: no pipe is left open
    (they were in a structure of ``_wait_result``'s, then a copy passed up four frames, and
    lost to a Ctrl+C until ``_create`` held it), none is closed twice, the process handle is
    closed.  (From ``HcsCreateProcess``'s return to the wait, the pipes are still in the
    operation's result, and after a wait that timed out they come with the late result: a
    Ctrl+C there, or from that wait's return to the hand-off to the reaper, hands the
    operation to the reaper: test_ctrl_c_while_hcs_runs_the_create_process.)"""
    from hcs_sandbox.hcs.process import Process

    def run() -> Any:
        process = system.create_process(PIPED)

        def clean_up() -> None:
            process.terminate()
            process.close()

        return clean_up

    with ComputeSystem.create(f"ctrlc-{uuid.uuid4()}", vm_document()) as system:
        system.start()
        run()()  # (resolved: every run takes the same path)
        n = 0
        while True:
            n += 1
            before = sim.leaks()
            result: list[Any] = []
            with _InterruptOnce(
                "HcsWaitForOperationResultAndProcessInfo",
                Process._create.__func__,
                n,
                every_bytecode=False,
            ) as at:
                try:
                    result.append(run())
                except KeyboardInterrupt:
                    pass
            for clean_up in result:
                clean_up()
            result.clear()
            # (an operation interrupted while it ran, _register's status query, is the
            # reaper's: judged once it is done)
            reaped = _reaped_by_another_thread()
            gc.collect()
            leaks, violations = sim.leaks(), sim.violations()
            if leaks != before or violations or reaped is not True:
                sim.reset()
                pytest.fail(
                    f"of {n} points: {at.where}: leaks {leaks} (before {before}), "
                    f"{violations}, reaped {reaped}"
                )
            if at.where is None:
                assert 0 < at.count < n
                break


# -- an operation HCS is still running when the Ctrl+C comes (review RV63 F2) ----------------


def _pids(sim: Any, system_id: str) -> set[int]:
    """The guest processes the simulator has spawned in ``system_id`` (it spawns one as a
    ``HcsCreateProcess`` operation completes, after its pipes are made; they are forgotten
    only when the system stops)."""
    return {pid for (sid, pid) in list(sim._processes) if sid == system_id}


@pytest.mark.parametrize("waited", ["timed-out", "completed"])
def test_ctrl_c_while_hcs_runs_the_create_process(sim: Any, vm_document: Any, waited: str) -> None:
    """A Ctrl+C at each handler point from ``HcsCreateProcess``'s return to the return of
    ``Process._create``, while HCS completes the operation ``_LATE`` s after the call: with a
    wait that times out (``timed-out``: the points before the wait, those from the wait's
    return to the hand-off to the reaper, the hand-off and the timeout's error) and with one
    that sees it complete (``completed``: the points before the wait, then the pipes'
    wrapping and the owner).  Once HCS has completed the operation and every reaper is done,
    the caller has had the KeyboardInterrupt and nothing is left open: no operation or process
    handle, none of the 3 pipes HCS made for it (a Ctrl+C before the hand-off closed the
    operation under HCS and lost them, review RV63 F2), no misuse seen."""
    from hcs_sandbox import errors
    from hcs_sandbox.hcs import operation
    from hcs_sandbox.hcs.process import Process

    timeout = _WAIT if waited == "timed-out" else 30.0
    points: list[str] = []
    failures: list[str] = []
    with ComputeSystem.create(f"ctrlc-{uuid.uuid4()}", vm_document()) as system:
        system.start()
        sim.set_latency("HcsCreateProcess", _LATE)
        try:  # (resolved: every run takes the same path)
            system.create_process(PIPED, timeout=timeout).close()
        except errors.OperationTimeoutError:
            pass
        assert operation.wait_abandoned(5)
        n = 0
        while not failures:
            n += 1
            before = sim.leaks()
            spawned = _pids(sim, system.id)
            result: list[Any] = []
            outcome = "returned"
            with _InterruptOnce(
                "HcsCreateProcess", Process._create.__func__, n, every_bytecode=False
            ) as at:
                try:
                    result.append(system.create_process(PIPED, timeout=timeout))
                except KeyboardInterrupt:
                    outcome = "KeyboardInterrupt"
                except errors.OperationTimeoutError:
                    outcome = "timed out"
            for process in result:  # (no interrupt: the program uses it, then ends it)
                process.terminate()
                process.close()
            result.clear()
            deadline = time.monotonic() + 10
            while _pids(sim, system.id) == spawned and time.monotonic() < deadline:
                time.sleep(0.005)  # HCS completes the operation ...
            completed = _pids(sim, system.id) != spawned
            reaped = _reaped_by_another_thread()  # ... and the reaper, if any, is done
            gc.collect()
            leaks, violations = sim.leaks(), sim.violations()
            if at.where is not None:
                points.append(at.where)
            want = "KeyboardInterrupt" if at.where else outcome
            if (completed, reaped, outcome, leaks, violations) != (
                True,
                True,
                want,
                before,
                [],
            ):
                failures.append(
                    f"{at.where}: completed {completed}, reaped {reaped}, {outcome}, "
                    f"leaks {leaks} (before {before}), {violations}"
                )  # (stops at the first: the simulator is reset once the system is closed)
            elif at.where is None:
                assert 0 < at.count < n
                assert outcome == ("timed out" if waited == "timed-out" else "returned")
                break
        sim.set_latency("HcsCreateProcess", 0)
    if failures:
        sim.reset()
    assert failures == [], f"of {n} points: " + "; ".join(failures)
    # (the sweep went through the window: points in invoke, before the wait, and for the
    # timed-out wait the points from its return to the hand-off, in _wait_result)
    assert any(p.startswith("Process._create.<locals>.invoke ") for p in points), points
    if waited == "timed-out":
        assert any(p.startswith("_wait_result ") for p in points), points
        assert any(p.startswith("_abandon ") for p in points), points


# -- review RV69: a failed call, a second Ctrl+C, the cancel, Process.info's handles ----------


def test_ctrl_c_after_a_failed_call_closes_the_operation_at_once(
    sim: Any, vm_document: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``HcsCreateProcess`` fails synchronously (HCS never started the operation) and a Ctrl+C
    comes at each handler point from its return to the return of ``Process._create`` (inside
    ``invoke`` after the call, and on): the operation is closed by the time the caller has the
    exception, no reaper is ever started for it, nothing is left open (review RV69 F1: a
    Ctrl+C inside ``invoke`` handed an operation whose call failed to a reaper, which then
    relied on an undocumented answer of the wait), and without a Ctrl+C the caller gets the
    call's error with the operation closed too (F4)."""
    from hcs_sandbox import errors
    from hcs_sandbox.hcs import operation

    handed: list[str] = []
    real_abandon = operation._abandon

    def abandon(*args: Any) -> None:
        handed.append(args[1])
        real_abandon(*args)

    monkeypatch.setattr(operation, "_abandon", abandon)
    from hcs_sandbox.hcs.process import Process

    failures: list[str] = []
    points: list[str] = []
    with ComputeSystem.create(f"ctrlc-{uuid.uuid4()}", vm_document()) as system:
        system.start()
        n = 0
        while not failures:
            n += 1
            before = _handles(sim)
            closes = sim.calls().get("HcsCloseOperation", 0)
            sim.inject("HcsCreateProcess", hresult=0x80070005, where="call")
            outcome = "returned"
            with _InterruptOnce(
                "HcsCreateProcess", Process._create.__func__, n, every_bytecode=False
            ) as at:
                try:
                    system.create_process(PIPED).close()
                except KeyboardInterrupt:
                    outcome = "KeyboardInterrupt"
                except errors.HcsError as exc:
                    outcome = f"HcsError 0x{exc.hresult & 0xFFFFFFFF:08X}"
            # (at once: no waiting for a reaper, there must be none)
            state = {
                "outcome": outcome,
                "operation closes": sim.calls().get("HcsCloseOperation", 0) - closes,
                "abandoned": operation.abandoned_count(),
                "handed to a reaper": list(handed),
                "handles": _handles(sim),
                "violations": sim.violations(),
            }
            want = {
                "outcome": "KeyboardInterrupt" if at.where else "HcsError 0x80070005",
                "operation closes": 1,
                "abandoned": 0,
                "handed to a reaper": [],
                "handles": before,
                "violations": [],
            }
            if at.where is not None:
                points.append(at.where)
            if state != want:
                failures.append(f"{at.where}: {state}")
            elif at.where is None:
                assert 0 < at.count < n
                break
        _reaped_by_another_thread()
    if failures:
        sim.reset()
    assert failures == [], f"of {n} points: " + "; ".join(failures)
    # (the sweep went through invoke after the call, where the hand-off was made)
    assert any(p.startswith("Process._create.<locals>.invoke ") for p in points), points


def test_a_second_ctrl_c_in_the_hand_off_is_retried(
    sim: Any, vm_document: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A start whose wait times out, a Ctrl+C at the entry of its hand-off to the reaper,
    and a second one at the entry of the ``finally``'s hand-off: the hand-off is made once
    more (review RV69 F2: it was not, and the operation leaked and the system's guard kept a
    call in flight for ever, so closing the system never closed its handle).  HCS is asked
    to cancel the operation (F6) once, by the timeout (the ``finally`` asks no more once the
    timeout's cancel returned: review RV74 F1), and the system's handle and the operation
    are closed once.
    (A start interrupted before its wait is closed at once, not handed over: review RV73 F1,
    test_ctrl_c_from_the_timeout_to_the_reapers_start.)"""
    from hcs_sandbox.hcs import operation

    calls: list[str] = []
    real_abandon = operation._abandon

    def abandon(*args: Any) -> None:
        calls.append(args[1])
        if len(calls) <= 2:
            raise KeyboardInterrupt  # a Ctrl+C at its entry: the timeout's, the finally's
        real_abandon(*args)

    baseline = _handles(sim)
    sim.set_latency("HcsStartComputeSystem", _LATE)
    system = ComputeSystem.create(f"ctrlc-{uuid.uuid4()}", vm_document())
    monkeypatch.setattr(operation, "_abandon", abandon)
    cancels = sim.calls().get("HcsCancelOperation", 0)
    closes = sim.calls().get("HcsCloseOperation", 0)
    with pytest.raises(KeyboardInterrupt):
        system.start(timeout=_WAIT)
    guard = system._handle_guard
    system.close()
    reaped = _reaped_by_another_thread()
    sim.set_latency("HcsStartComputeSystem", 0)
    del system
    gc.collect()
    state = {
        "hand-offs": calls,
        "reaped": reaped,
        "inflight": guard.inflight,
        "cancels": sim.calls().get("HcsCancelOperation", 0) - cancels,
        "operation closes": sim.calls().get("HcsCloseOperation", 0) - closes,
        "handles": _handles(sim),
        "violations": sim.violations(),
    }
    want = {
        "hand-offs": ["HcsStartComputeSystem"] * 3,
        "reaped": True,
        "inflight": 0,
        "cancels": 1,
        "operation closes": 1,
        "handles": baseline,
        "violations": [],
    }
    if state != want:
        sim.reset()
    assert state == want


def test_ctrl_c_from_the_wait_that_returns_process_info_handles(
    sim: Any, vm_document: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Ctrl+C at each handler point from the return of the wait that hands over the std
    handles of ``HcsGetProcessInfo`` to the return of ``Process.info``: each handle is closed
    once (review RV69 F7: they were in a structure of ``_wait_result``'s, then a copy passed
    up, and lost to a Ctrl+C until ``info()`` closed them).  (The simulator's own
    ``HcsGetProcessInfo`` hands out NULL std handles; here it hands out 3 new pipes, counted
    until closed, as the library's docstring expects of Windows.)"""
    import os

    real = sim._process_op

    def process_op(
        function: str, process: Any, operation: Any, op_type: int, work: Any, **kw: Any
    ) -> Any:
        if function == "HcsGetProcessInfo":
            plain = work

            def work(h: Any) -> Any:
                _, (pid, *_) = plain(h)
                fds: list[int] = []
                for what in ("stdin", "stdout", "stderr"):
                    r, w = os.pipe()
                    os.close(w)
                    sim.track_fd(r, what)
                    fds.append(r)
                return None, (pid, *fds)

        return real(function, process, operation, op_type, work, **kw)

    monkeypatch.setattr(sim, "_process_op", process_op)
    from hcs_sandbox.hcs.process import Process

    failure: str | None = None
    points: list[str] = []
    n = 0
    with ComputeSystem.create(f"ctrlc-{uuid.uuid4()}", vm_document()) as system:
        system.start()
        process = system.create_process(PROCESS | {"CommandLine": "cmd /c pause"})
        assert process.info().process_id > 0  # (resolved; its handles closed)
        while failure is None:
            n += 1
            before = sim.leaks()
            with _InterruptOnce(
                "HcsWaitForOperationResultAndProcessInfo", Process.info, n, every_bytecode=False
            ) as at:
                try:
                    process.info()
                except KeyboardInterrupt:
                    pass
            gc.collect()
            leaks, violations = sim.leaks(), sim.violations()
            if leaks != before or violations:
                failure = (
                    f"of {n} points: {at.where}: leaks {leaks} (before {before}), {violations}"
                )
            elif at.where is None:
                assert 0 < at.count < n
                break
            else:
                points.append(at.where)
        process.terminate()
        process.close()
    if failure is not None:
        sim.reset()
        pytest.fail(failure)
    assert any(p.startswith("_wait_result ") for p in points), points
    assert any(p.startswith("Process.info ") for p in points), points


def test_a_second_ctrl_c_as_the_clean_up_frees_the_document(
    sim: Any, vm_document: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first Ctrl+C at ``take_hcs_string``'s entry, before the body read the result
    document of a completed ``HcsGetComputeSystemProperties``, and a second one at its
    entry again in the ``finally``: the rest of the clean-up still runs, so the operation is
    closed and the system's guard released (review RV72 F1: it was skipped, the operation
    stayed open and the guard kept a call in flight for ever).  (The document is not freed:
    both frees were interrupted before they began; the test frees it at the end.)"""
    from hcs_sandbox.hcs import operation

    real_take = operation.take_hcs_string
    raised: list[int] = []

    def take(slot: Any) -> Any:
        if slot.value and len(raised) < 2:
            raised.append(slot.value)
            raise KeyboardInterrupt
        return real_take(slot)

    baseline = _handles(sim)
    system = ComputeSystem.create(f"ctrlc-{uuid.uuid4()}", vm_document())
    guard = system._handle_guard
    monkeypatch.setattr(operation, "take_hcs_string", take)
    with pytest.raises(KeyboardInterrupt):
        system.properties()
    monkeypatch.setattr(operation, "take_hcs_string", real_take)
    state = {"raised": len(raised), "inflight": guard.inflight}
    system.close()
    del system
    gc.collect()
    state["handles"] = _handles(sim)
    state["violations"] = sim.violations()
    for address in dict.fromkeys(raised):  # the unfreed document: freed here (LocalFree)
        real_take(ctypes.c_void_p(address))
    want = {"raised": 2, "inflight": 0, "handles": baseline, "violations": []}
    if state != want:
        sim.reset()
    assert state == want


def test_no_cancel_after_the_reaper_closed_the_operation(
    sim: Any, vm_document: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A start whose wait times out; a Ctrl+C comes out of the timeout's hand-off after the
    reaper started and, here, already closed the operation.  The ``finally`` makes the
    hand-off again (one reaper claims it) but asks HCS to cancel nothing more: the timeout
    did, and the handle may be closed (review RV74 F1: a second ``HcsCancelOperation`` went
    to the closed handle, a use after close on Windows).  The operation is closed once."""
    from hcs_sandbox.hcs import operation

    real_abandon, real_cancel, real_close = (
        operation._abandon,
        operation._cancel,
        operation._close_op,
    )
    closed: set[int] = set()
    cancels: list[tuple[int, bool]] = []
    hand_offs: list[str] = []

    def close_op(op: int) -> None:
        closed.add(op)
        real_close(op)

    def cancel(op: int, function: str) -> None:
        cancels.append((op, op in closed))
        real_cancel(op, function)

    def abandon(*args: Any) -> None:
        hand_offs.append(args[1])
        real_abandon(*args)
        if len(hand_offs) == 1:
            assert operation.wait_abandoned(5)  # the reaper is done: the operation closed
            raise KeyboardInterrupt  # a Ctrl+C as the hand-off returns

    monkeypatch.setattr(operation, "_close_op", close_op)
    monkeypatch.setattr(operation, "_cancel", cancel)
    sim.set_latency("HcsStartComputeSystem", _LATE)
    system = ComputeSystem.create(f"ctrlc-{uuid.uuid4()}", vm_document())
    monkeypatch.setattr(operation, "_abandon", abandon)
    closes = sim.calls().get("HcsCloseOperation", 0)
    try:
        with pytest.raises(KeyboardInterrupt):
            system.start(timeout=_WAIT)
    finally:
        sim.set_latency("HcsStartComputeSystem", 0)
    system.close()
    del system
    gc.collect()
    state = {
        "hand-offs": len(hand_offs),
        "cancels": [after_close for _op, after_close in cancels],
        "operation closes": sim.calls().get("HcsCloseOperation", 0) - closes,
        "violations": sim.violations(),
    }
    want = {"hand-offs": 2, "cancels": [False], "operation closes": 1, "violations": []}
    if state != want:
        sim.reset()
    assert state == want
