"""Fault injection at every HCS and storage call of create, start, stop and remove: nothing is
left half-made (no compute system, endpoint, file, record, VM-access grant, leaked handle or
string once the sandbox is removed, or pruned).

The calls are not listed by hand.  Each verb is first run without a fault, in each
configuration that takes a path of its own (network none, nat, internet-only; persistent,
whose start of a stopped sandbox re-creates its compute system; a mapped folder; a logon
command), through a new object (as every CLI command is) and through the object the
previous verb returned; the simulator's call counters (``Simulator.calls()``, which is what
``inject``'s ``nth`` counts) say which (function, nth call) pairs it made.  Then a fault is
injected at each pair in turn: at the call and, for asynchronous HCS functions, in the
operation's result.  A call added to a path is swept from then on.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from hcs_sandbox import errors
from hcs_sandbox.sandbox.maintenance import prune
from hcs_sandbox.sandbox.planner import NAT_NETWORK_ID
from hcs_sandbox.sandbox.sandbox import Sandbox
from hcs_sandbox.sandbox.spec import MappedFolder, PortMapping, SandboxSpec
from hcs_sandbox.sim.core import ASYNC_FUNCTIONS

if TYPE_CHECKING:
    from conftest import Inspector

E_FAIL = 0x80004005
ERROR_DISK_FULL = 0x80070070
NAT = SandboxSpec(name="faulty", network="nat")


# ---------------------------------------------------------------------------------------
# The sweep: every (function, nth call) of a recorded run of each verb, in each
# configuration that takes a path of its own.
# ---------------------------------------------------------------------------------------

NAME = "faulty"

#: Exports the simulator counts but cannot make fail: void functions (HcsCloseOperation.md,
#: HcsCloseComputeSystem.md, HcsCloseProcess.md), the allocators, and the wait for an
#: operation's result, whose failure the ``where="result"`` faults stand for.
NOT_INJECTABLE = frozenset(
    {
        "HcsCloseOperation",
        "HcsCloseComputeSystem",
        "HcsCloseProcess",
        "HcsWaitForOperationResult",
        "HcsWaitForOperationResultAndProcessInfo",
        "HcsGetOperationResult",
        "HcsGetOperationResultAndProcessInfo",
        "LocalFree",
        "CoTaskMemFree",
    }
)
#: A close that fails leaves its handle open, which the simulator counts as a leak (by
#: design: the caller has nothing else to do).  ``CloseHandle`` (kernel32) is failed in
#: Python (:func:`_failing_close_handle`): the simulator injects no faults there.
CLOSE_LEAKS = {
    "HcnCloseNetwork": ("network",),
    "HcnCloseEndpoint": ("endpoint",),
    "CloseHandle": ("vhd", "pipe"),
}

#: The verbs run (without a fault, through one object) to reach the state a verb needs.
BEFORE = {
    "create": (),
    "start": ("create",),
    "stop": ("create", "start"),
    "restart": ("create", "start", "stop"),
    "remove-running": ("create", "start"),
    "remove-stopped": ("create", "start", "stop"),
}


@dataclasses.dataclass(frozen=True)
class Config:
    """One sandbox configuration whose verbs take paths of their own."""

    id: str
    options: dict[str, Any]
    #: The NAT network exists before the verb (False: create makes it).
    network_exists: bool = True
    mapped: bool = False
    #: (column, text) written into the record by hand before the verb (a damaged record:
    #: sandbox/damage.py); its verbs are those a damaged record allows, through a new
    #: object (one made before the damage holds the record as it was).
    damaged: tuple[str, str] | None = None

    @property
    def network(self) -> str:
        return str(self.options.get("network", "none"))

    @property
    def persistent(self) -> bool:
        return self.options.get("persistence") == "persistent"

    @property
    def guest_processes(self) -> bool:
        return self.mapped or "logon_command" in self.options

    def spec(self, share: Path) -> SandboxSpec:
        options = dict(self.options)
        if self.mapped:
            options["mapped_folders"] = (MappedFolder(str(share), "C:\\share"),)
        return SandboxSpec(name=NAME, **options)

    def verbs(self) -> tuple[str, ...]:
        if self.damaged is not None:
            return ("stop", "remove-running", "remove-stopped")
        plain = ("create", "start", "stop", "remove-running", "remove-stopped")
        return (*plain, "restart") if self.persistent else plain


CONFIGS = (
    Config("none", {}),
    Config("nat", {"network": "nat", "ports": (PortMapping(8080, 80),)}, network_exists=False),
    Config("internet-only", {"network": "internet-only"}),
    Config(
        "persistent",
        {"network": "nat", "persistence": "persistent", "ports": (PortMapping(8080, 80),)},
    ),
    Config("mapped", {}, mapped=True),
    Config("logon", {"logon_command": "cmd /c echo hi"}),
    # A record whose field is not JSON: removed by what it still tells (its folder by the
    # folder convention, its endpoints by their name), stopped keeping a damaged extra.
    Config("damaged-files", {"network": "nat"}, damaged=("files", "not json")),
    Config("damaged-endpoints", {"network": "nat"}, damaged=("endpoint_ids", "not json")),
    Config("damaged-extra", {"network": "nat"}, damaged=("extra", "not json")),
    Config("damaged-labels", {}, damaged=("labels", "not json")),
)


def _sweeps() -> Iterator[Any]:
    for config in CONFIGS:
        for verb in config.verbs():
            # "cli": a new object and cold caches, as every CLI command is a new process;
            # "api": the object the previous verb returned (its handle held).
            one = verb == "create" or config.damaged is not None
            for mode in ("cli",) if one else ("cli", "api"):
                yield pytest.param(config, verb, mode, id=f"{config.id}-{verb}-{mode}")


def _must_record(config: Config, verb: str, mode: str) -> set[str]:
    """Calls the recorded run must hold (the review's list of calls once missed), so a
    broken recorder cannot make the sweep empty."""
    need: set[str] = set()
    if verb == "create":
        # The scratch disk is formatted through the handle CreateVirtualDisk returned
        # (no OpenVirtualDisk), then that handle is closed.
        need |= {"HcsGetServiceProperties#1", "CreateVirtualDisk#1", "CloseHandle#1"}
        need |= {"HcsFormatWritableLayerVhd#1", "HcsCreateEmptyGuestStateFile#1"}
        need |= {"HcsGrantVmAccess#1", "HcsGrantVmAccess#2"}
        need |= {"HcsCreateOperation#1", "HcsCreateComputeSystem#1"}
        need |= {"HcsSetComputeSystemCallback#1"}
        if config.network != "none":
            need |= {"HcnOpenNetwork#1", "HcnCreateEndpoint#1", "HcnQueryEndpointProperties#1"}
        if not config.network_exists:
            need |= {"HcnCreateNetwork#1", "HcnOpenNetwork#2"}
    elif verb in ("start", "restart"):
        need |= {"HcsStartComputeSystem#1", "HcsCreateOperation#1"}
        if verb == "start" and mode == "cli":
            need |= {"HcsOpenComputeSystem#1", "HcsGetComputeSystemProperties#1"}
        if config.guest_processes:
            need |= {"HcsCreateProcess#1", "HcsSetProcessCallback#1"}
            need |= {"HcsGetProcessProperties#1"}
        if verb == "restart":
            need |= {"HcsGrantVmAccess#1", "HcsGrantVmAccess#2", "HcsCreateComputeSystem#1"}
            need |= {"HcsSetComputeSystemCallback#1", "HcnOpenEndpoint#1"}
            if mode == "cli":
                need.add("HcsGetServiceProperties#1")
    elif verb == "stop":
        need.add("HcsShutDownComputeSystem#1")
        if mode == "cli":
            need |= {"HcsOpenComputeSystem#1", "HcsGetComputeSystemProperties#1"}
    elif verb == "remove-running":
        need.add("HcsTerminateComputeSystem#1")
        if config.network != "none":
            need.add("HcnDeleteEndpoint#1")
    if config.damaged is not None and config.damaged[0] == "endpoint_ids":
        if verb.startswith("remove"):  # its endpoints found by their name
            need |= {"HcnEnumerateEndpoints#1", "HcnOpenEndpoint#1", "HcnDeleteEndpoint#1"}
    elif verb == "remove-stopped":
        if config.network != "none":
            need.add("HcnDeleteEndpoint#1")
        if mode == "cli":
            need.add("HcsOpenComputeSystem#1")
    return need


def _join_logon(sb: Sandbox) -> None:
    thread = getattr(sb, "_logon_thread", None)
    if thread is not None:
        thread.join(20)
        assert not thread.is_alive(), "the logon command thread did not end"


def _act(verb: str, sb: Sandbox | None, spec: SandboxSpec) -> Sandbox:
    """Run one verb: ``create`` makes the object, the others use ``sb``."""
    if verb == "create":
        return Sandbox.create(spec)
    assert sb is not None
    if verb in ("start", "restart"):
        sb.start()
        _join_logon(sb)  # its calls are part of start's run
    elif verb == "stop":
        sb.stop(timeout=5)
    else:
        sb.remove(force=True)
    return sb


def _dead_pid() -> int:
    """The id of a process that has ended (an abandoned record's owner)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@contextlib.contextmanager
def _failing_close_handle(nth: int) -> Iterator[dict[str, int]]:
    """kernel32 ``CloseHandle`` fails (returns FALSE, the handle stays open) at its ``nth``
    call from now: ``native.handles.close_handle`` raises the OSError it raises then."""
    from hcs_sandbox.native import handles

    real = handles.close_handle
    seen = {"calls": 0}

    def close_handle(handle: int | ctypes.c_void_p) -> None:
        # (a virtual disk's handle comes in the c_void_p that holds it: close_handle's doc)
        value = handle.value if isinstance(handle, ctypes.c_void_p) else handle
        if value:
            seen["calls"] += 1
            if seen["calls"] == nth:
                raise OSError(f"CloseHandle({value:#x}) failed (injected)")
        real(handle)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(handles, "close_handle", close_handle)
        yield seen


#: Longer than any wait for an exit takes in the simulator (milliseconds), shorter than
#: the minutes a missed exit event would hang a case for.
HANG_LIMIT = 2.0


@contextlib.contextmanager
def _bounded_exit_waits(hangs: list[str]) -> Iterator[None]:
    """A wait for a compute system's or process's exit event (``hcs._watch.Watch``) that
    lasts longer than :data:`HANG_LIMIT` is noted in ``hangs`` and ended as if the handle
    had been closed (the waiter gets its "handle closed" error), so a case that would hang
    fails in seconds instead of blocking the run."""
    from hcs_sandbox.hcs._watch import Watch

    real = Watch.wait

    def wait(self: Watch, timeout: float | None) -> bool:
        if timeout is not None and timeout <= HANG_LIMIT:
            return real(self, timeout)
        if real(self, HANG_LIMIT):
            return True
        hangs.append(
            f"{threading.current_thread().name} waited more than {HANG_LIMIT:g} s for an "
            f"exit event (limit {timeout} s)"
        )
        self.mark_closed()
        return True

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Watch, "wait", wait)
        yield


class Sweep:
    """One (configuration, verb, mode): record its calls, then fail each in turn."""

    def __init__(self, config: Config, verb: str, mode: str, sim: Any, world: Inspector) -> None:
        self.config, self.verb, self.mode = config, verb, mode
        self.sim, self.world = sim, world
        share = world.state.parent / "share"
        share.mkdir(exist_ok=True)
        self.spec = config.spec(share)
        self.hangs: list[str] = []

    # -- the state before the verb ------------------------------------------------------

    def _network(self) -> None:
        if self.config.network == "none":
            return
        from hcs_sandbox.hcs import network as hcn

        exists = NAT_NETWORK_ID in [n.lower() for n in hcn.enumerate_networks(None)]
        if exists and not self.config.network_exists:
            hcn.delete_network(NAT_NETWORK_ID)
        elif not exists and self.config.network_exists:
            Sandbox.create(SandboxSpec(name="warm-up", network="nat")).remove(force=True)

    def prepare(self) -> Sandbox | None:
        """Reach the verb's starting state (no fault) and return the object it acts on."""
        self._network()
        if self.config.guest_processes:
            # A short guest command may end before its exit callback is registered (the
            # case Process._register queries the status for): made certain, not a race.
            self.sim.set_latency("HcsSetProcessCallback", 0.005)
        sb: Sandbox | None = None
        for verb in BEFORE[self.verb]:
            sb = _act(verb, sb, self.spec)
        if self.config.damaged is not None:
            import sqlite3

            column, text = self.config.damaged
            conn = sqlite3.connect(self.world.state / "state.db")
            try:
                conn.execute(f"UPDATE sandboxes SET {column} = ? WHERE name = ?", (text, NAME))
                conn.commit()
            finally:
                conn.close()
        if self.mode == "cli":
            if sb is not None:
                sb.close()
                sb = Sandbox.get(NAME)
            from hcs_sandbox.sandbox import hostfacts

            hostfacts.invalidate_cache()
        return sb

    # -- recording ----------------------------------------------------------------------

    def record(self) -> list[tuple[str, int]]:
        """Every (function, nth call) the verb makes, from the simulator's call counters
        (``Simulator.calls()``: what ``inject``'s ``nth`` counts, on every thread)."""
        sb = self.prepare()
        before = self.sim.calls()
        sb = _act(self.verb, sb, self.spec)
        after = self.sim.calls()
        sb.close()
        self.clean_up(None, sb)
        problems = self.leftovers(None)
        assert not problems, f"the run without a fault left {problems}"
        self.sim.reset()
        return [
            (function, n)
            for function in sorted(after)
            for n in range(1, after[function] - before.get(function, 0) + 1)
        ]

    # -- one fault ----------------------------------------------------------------------

    def case(self, function: str, nth: int, where: str) -> list[str]:
        """Fail the ``nth`` call of ``function`` during the verb; what is wrong afterwards."""
        label = f"{function}#{nth}@{where}"
        problems: list[str] = []
        hung = len(self.hangs)
        sb = self.prepare()
        before = self.sim.calls().get(function, 0)
        failure: Exception | None = None
        with contextlib.ExitStack() as stack:
            if function == "CloseHandle":
                seen = stack.enter_context(_failing_close_handle(nth))
            else:
                self.sim.inject(function, nth=nth, hresult=E_FAIL, where=where)
            try:
                sb = _act(self.verb, sb, self.spec)
            except errors.HcsSandboxError as exc:
                failure = exc
            except Exception as exc:
                failure = exc
                problems.append(f"{label}: {self.verb} failed without a clear error: {exc!r}")
            finally:
                self.sim._faults.clear()
            calls = (
                seen["calls"]
                if function == "CloseHandle"
                else (self.sim.calls().get(function, 0) - before)
            )
        if calls < nth:
            problems.append(
                f"{label}: {self.verb} made {calls} call(s) of {function} this time: the "
                "path differs from the recorded one"
            )
        if sb is not None:
            _join_logon(sb)
            sb.close()
        if failure is not None:
            problems += [f"{label}: {p}" for p in self.check_failed(failure)]
        elif self.verb == "create" and function not in CLOSE_LEAKS:
            problems.append(f"{label}: the fault did not fail create")
        elif self.verb in ("start", "restart", "stop"):
            expected = "stopped" if self.verb == "stop" else "running"
            state = self.state()
            if state != expected:
                problems.append(f"{label}: {self.verb} succeeded, but the sandbox is {state}")
        if failure is not None and self.verb == "create":
            # A failed create rolls itself back: nothing to remove.
            left = self.leftovers(function)
            if left:
                problems.append(f"{label}: create failed ({failure}) and left {left}")
        try:
            self.clean_up(failure, sb)
        except Exception as exc:
            problems.append(f"{label}: cleaning up after {self.verb} failed: {exc!r}")
        left = self.leftovers(function)
        if left:
            problems.append(f"{label}: left after {self.verb} and its clean-up: {left}")
            self.scrub(problems)
        problems += [f"{label}: {self.verb} hung: {text}" for text in self.hangs[hung:]]
        self.sim.reset()  # counters, faults and the close faults' deliberate leaks
        return problems

    def scrub(self, problems: list[str]) -> None:
        """After a leak: release it (records abandoned, then ``prune``) so the next case
        starts clean, or stop the sweep with what went wrong so far."""
        from hcs_sandbox.sandbox.store import open_store

        with open_store(self.world.state) as store:
            for record in store.list(all=True, kind=None):
                store.update(record.id, owner_pid=_dead_pid())
        with contextlib.suppress(Exception):
            prune()
        left = self.leftovers(None)
        left.pop("leaks", None)
        left.pop("violations", None)
        if left:
            raise AssertionError("\n".join([*problems, f"prune could not release {left}"]))

    def check_failed(self, failure: Exception) -> list[str]:
        """The record tells the truth after a failed verb."""
        records = self.world.records()
        if self.verb.startswith("remove"):
            ok = records in ([f"{NAME}:removing"], [f"{NAME}:running"])
            return [] if ok else [f"remove failed ({failure}) and left the records {records}"]
        if self.verb == "create":
            return []
        state = self.state()
        allowed = ("running", "stopped") if self.verb == "stop" else ("created", "stopped")
        if state not in allowed:
            return [f"{self.verb} failed ({failure}) and the sandbox is {state}"]
        return []

    def state(self) -> str:
        """The sandbox's state as a new object sees it (the record, checked with HCS)."""
        sb = Sandbox.get(NAME)
        try:
            return sb.state
        finally:
            sb.close()

    def clean_up(self, failure: Exception | None, sb: Sandbox | None) -> None:
        """What a user does next: ``remove --force``; after a failed remove, the same
        object removes again (API) or, the CLI process having ended, ``prune``."""
        if not self.world.records():
            return
        if self.verb.startswith("remove") and self.mode == "cli":
            from hcs_sandbox.sandbox.store import open_store

            with open_store(self.world.state) as store:
                store.update(store.get(NAME).id, owner_pid=_dead_pid())
            report = prune()
            assert report.failures == [], report.failures
            return
        if self.verb.startswith("remove") and sb is not None:
            sb.remove(force=True)
            sb.close()
            return
        again = Sandbox.get(NAME)
        try:
            again.remove(force=True)
        finally:
            again.close()

    def leftovers(self, faulted: str | None) -> dict[str, Any]:
        """Systems, endpoints, files, records, grants, leaked handles and strings,
        simulator violations: what exists now (empty: nothing)."""
        left: dict[str, Any] = {
            "systems": [s.get("Id") for s in self.world.systems()],
            "endpoints": self.world.endpoints(),
            "files": self.world.files(),
            "records": self.world.records(),
            "grants": self.sim.store.read_grants(),
            "violations": self.sim.violations(),
        }
        leaks = self.sim.leaks()
        deadline = time.monotonic() + 0.5  # a worker finishing a completion
        while leaks and time.monotonic() < deadline:
            time.sleep(0.02)
            leaks = self.sim.leaks()
        for kind in CLOSE_LEAKS.get(faulted or "", ()):
            if leaks.get(kind) == 1:
                del leaks[kind]  # the handle whose close was made to fail
                break
        left["leaks"] = leaks
        return {key: value for key, value in left.items() if value}


@pytest.mark.parametrize(("config", "verb", "mode"), list(_sweeps()))
def test_fault_at_every_call(
    config: Config, verb: str, mode: str, sim: Any, world: Inspector
) -> None:
    """A fault at every call the verb makes (at the call, and in the operation's result
    for asynchronous ones) leaves nothing once the sandbox is removed (or pruned)."""
    sweep = Sweep(config, verb, mode, sim, world)
    with _bounded_exit_waits(sweep.hangs):
        _sweep(sweep, config, verb, mode)
    world.assert_nothing_left()


def _sweep(sweep: Sweep, config: Config, verb: str, mode: str) -> None:
    calls = sweep.record()
    assert not sweep.hangs, sweep.hangs
    if not calls:
        # The one verb that may make no HCS call: removing a sandbox without a network that
        # the same object stopped (it saw the system's exit, so it does not look it up:
        # Sandbox.remove).  Everywhere else an empty recording is a broken recorder.
        assert (verb, mode, config.network) == ("remove-stopped", "api", "none"), (
            f"the recorded {verb} made no call: the recorder is broken"
        )
    again = sweep.record()
    assert again == calls, f"two runs of {verb} made different calls: {calls} / {again}"
    recorded = {f"{function}#{n}" for function, n in calls}
    missing = _must_record(config, verb, mode) - recorded
    assert not missing, f"the recorded {verb} lacks {sorted(missing)}: {sorted(recorded)}"
    problems: list[str] = []
    tried = 0
    for function, nth in calls:
        if function in NOT_INJECTABLE:
            continue
        for where in ("call", "result") if function in ASYNC_FUNCTIONS else ("call",):
            problems += sweep.case(function, nth, where)
            tried += 1
    assert tried >= len(_must_record(config, verb, mode))
    assert not problems, "\n".join(problems)


def test_the_call_counters_see_every_call(
    monkeypatch: pytest.MonkeyPatch, sim: Any, world: Inspector
) -> None:
    """The sweep's recorder, ``Simulator.calls()``, counts each call that reaches the
    simulator's single entry point (``sim/backend.py`` ``_dispatch``) exactly once, so no
    call of a recorded run escapes the sweep."""
    import collections

    from hcs_sandbox.sim import backend

    seen: collections.Counter[str] = collections.Counter()
    lock = threading.Lock()
    real = backend._dispatch

    def dispatch(dll: str, name: str, restype: Any, args: tuple[Any, ...]) -> Any:
        with lock:  # guest processes and the logon command call from other threads
            seen[name] += 1
        return real(dll, name, restype, args)

    monkeypatch.setattr(backend, "_dispatch", dispatch)
    share = world.state.parent / "share"
    share.mkdir()
    spec = SandboxSpec(
        name="counted",
        network="nat",
        persistence="persistent",
        ports=(PortMapping(8080, 80),),
        mapped_folders=(MappedFolder(str(share), "C:\\share"),),
        logon_command="cmd /c echo hi",
    )
    before = sim.calls()
    sb = Sandbox.create(spec)
    for _ in range(2):  # the second start re-creates the stopped sandbox
        sb.start()
        _join_logon(sb)
        sb.stop(timeout=5)
    sb.remove(force=True)
    after = sim.calls()
    counted = {f: n - before.get(f, 0) for f, n in after.items() if n != before.get(f, 0)}
    assert len(counted) > 20
    assert dict(seen) == counted
    world.assert_nothing_left()


def test_a_failed_status_query_does_not_hang_a_guest_command(sim: Any, world: Inspector) -> None:
    """Found by the sweep (mapped-start, logon-start: HcsGetProcessProperties#1, and the
    HcsCreateOperation of that query).  ``Process._register`` (hcs/process.py) asks once
    for the status after ``HcsSetProcessCallback``, because a process that exited before
    its callback was registered sends no ProcessExited event; when that query fails, the
    failure is only logged and ``wait()`` waits for an event that never comes: until the
    command's timeout (an hour for a mapped folder's link at start, never for the logon
    command).  A clear error or the exit code is fine; a timeout is not."""
    sb = Sandbox.create(SandboxSpec(name="query"))
    try:
        sb.start()
        # The command ends before its callback is registered: certain, not a race.
        sim.set_latency("HcsSetProcessCallback", 0.005)
        sim.inject("HcsGetProcessProperties", nth=1, hresult=E_FAIL)
        try:
            result = sb.exec("cmd /c echo hi", timeout=HANG_LIMIT)
        except errors.ExecTimeoutError as exc:
            pytest.fail(f"the command's exit was missed: {exc}")
        except errors.HcsSandboxError:
            pass  # one clear error
        else:
            assert result.exit_code == 0
    finally:
        sim._faults.clear()
        sb.remove(force=True)
    world.assert_nothing_left()


def test_create_disk_full_is_a_clear_error(sim: Any, world: Inspector) -> None:
    sim.inject("CreateVirtualDisk", hresult=ERROR_DISK_FULL)
    with pytest.raises(errors.HcsSandboxError) as info:
        Sandbox.create(NAT)
    assert "CreateVirtualDisk" in str(info.value) or "disk" in str(info.value).lower()
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

    def broken(network_id: str, document: Any, **kwargs: Any) -> Any:
        raise errors.error_from_hresult(0x803B000C, function="HcnCreateEndpoint", hcn=True)

    monkeypatch.setattr(network, "create_endpoint", broken)
    with pytest.raises(errors.HcnError):
        Sandbox.create(NAT)
    world.assert_nothing_left()
