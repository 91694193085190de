"""Sandbox lifecycle through the simulator: every method, states, records, files."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from hcs_sandbox import errors
from hcs_sandbox.sandbox.sandbox import Sandbox
from hcs_sandbox.sandbox.spec import SandboxSpec

if TYPE_CHECKING:
    from conftest import Inspector


def test_create_start_stop_remove(world: Inspector) -> None:
    steps: list[str] = []
    sb = Sandbox.create(SandboxSpec(name="alpha"), progress=steps.append)
    assert sb.state == "created"
    assert sb.name == "alpha"
    assert "creating the compute system" in steps
    assert [s["Id"].lower() for s in world.systems()] == [sb.system_id.lower()]
    assert any(f.endswith("sandbox.vhdx") for f in world.files())
    sb.start()
    assert sb.state == "running"
    assert sb.started_at is not None
    sb.stop(timeout=5)
    assert sb.state == "stopped"
    assert world.systems() == []
    sb.remove()
    world.assert_nothing_left()
    with pytest.raises(errors.SandboxNotFoundError):
        Sandbox.get("alpha")


def test_get_list_and_inspect(world: Inspector) -> None:
    a = Sandbox.create(SandboxSpec(name="one", labels={"team": "x"}))
    b = Sandbox.create(SandboxSpec(name="two"))
    try:
        assert Sandbox.get("ONE").id == a.id
        assert Sandbox.get(b.id[:8]).name == "two"
        assert [s.name for s in Sandbox.list()] == ["one", "two"]
        a.start()
        assert [s.name for s in Sandbox.list(all=False)] == ["one"]
        info = a.inspect()
        assert info["state"] == "running"
        assert info["labels"] == {"team": "x"}
        assert info["uptime"] is not None
        assert info["spec"]["name"] == "one"
        assert a.to_dict()["name"] == "one"
        assert a.simulated
    finally:
        a.remove(force=True)
        b.remove(force=True)
    world.assert_nothing_left()


def test_name_in_use(world: Inspector) -> None:
    sb = Sandbox.create(SandboxSpec(name="dup"))
    try:
        with pytest.raises(errors.NameInUseError):
            Sandbox.create(SandboxSpec(name="DUP"))
        assert len(world.systems()) == 1
    finally:
        sb.remove()
    world.assert_nothing_left()


def test_pause_resume_kill_wait(world: Inspector) -> None:
    sb = Sandbox.create(SandboxSpec(name="p"))
    sb.start()
    sb.pause()
    assert sb.state == "paused"
    with pytest.raises(errors.SandboxStateError):
        sb.pause()
    sb.resume()
    assert sb.state == "running"
    sb.kill()
    assert sb.state == "stopped"
    info = sb.wait(timeout=5)
    assert info.exit_type in ("ForcedExit", "Unknown", "GracefulExit")
    sb.remove()
    world.assert_nothing_left()


def test_wait_sees_a_kill_from_another_object(world: Inspector) -> None:
    import threading

    sb = Sandbox.create(SandboxSpec(name="w"))
    sb.start()
    other = Sandbox.get("w")
    timer = threading.Timer(0.2, other.kill)
    timer.start()
    info = sb.wait(timeout=10)
    timer.join()
    assert sb.state == "stopped"
    assert isinstance(info.status, int)
    other.close()
    sb.remove()
    world.assert_nothing_left()


def test_wait_timeout(world: Inspector) -> None:
    sb = Sandbox.create(SandboxSpec(name="t"))
    sb.start()
    with pytest.raises(errors.OperationTimeoutError):
        sb.wait(timeout=0.2)
    sb.remove(force=True)
    world.assert_nothing_left()


def test_remove_running_needs_force(world: Inspector) -> None:
    sb = Sandbox.create(SandboxSpec(name="r"))
    sb.start()
    with pytest.raises(errors.SandboxStateError, match="running"):
        sb.remove()
    assert sb.state == "running"
    sb.remove(force=True)
    world.assert_nothing_left()


def test_ephemeral_cannot_restart(world: Inspector) -> None:
    sb = Sandbox.create(SandboxSpec(name="e"))
    sb.start()
    sb.kill()
    with pytest.raises(errors.SandboxStateError, match="ephemeral"):
        sb.start()
    sb.remove()
    world.assert_nothing_left()


def test_persistent_restart_keeps_the_disk(world: Inspector) -> None:
    sb = Sandbox.create(SandboxSpec(name="keep", persistence="persistent"))
    disk = next(f for f in sb.record.files if f.endswith(".vhdx"))
    stamp = Path(disk).stat().st_mtime_ns, Path(disk).stat().st_ino
    sb.start()
    sb.stop(timeout=2)
    assert sb.state == "stopped"
    again = Sandbox.get("keep")
    again.start()
    assert again.state == "running"
    assert (Path(disk).stat().st_mtime_ns, Path(disk).stat().st_ino) == stamp
    assert "re-created" in again.logs()
    again.remove(force=True)
    sb.close()
    world.assert_nothing_left()


def test_events_end_with_system_exited(world: Inspector) -> None:
    import threading

    sb = Sandbox.create(SandboxSpec(name="ev"))
    sb.start()
    other = Sandbox.get("ev")
    killer = threading.Timer(0.2, other.kill)
    killer.start()
    names = [e.type for e in sb.events(timeout=10)]
    # The kill's own record write ends after the exit event reached sb: let it finish
    # before the remove (else it may find the record gone, in the timer's thread).
    killer.join(10)
    other.close()
    assert names[-1] == "SystemExited"
    sb.remove(force=True)
    world.assert_nothing_left()


def test_events_after_the_exit_still_end_with_system_exited(world: Inspector) -> None:
    sb = Sandbox.create(SandboxSpec(name="late"))
    sb.start()
    Sandbox.get("late").kill()  # another object: the exit reaches sb's handle first
    time.sleep(0.2)
    names = [e.type for e in sb.events(timeout=5)]
    assert names == ["SystemExited"]
    other = Sandbox.get("late")  # a fresh object without a handle: from the record
    assert [e.type for e in other.events(timeout=5)] == ["SystemExited"]
    sb.remove(force=True)
    world.assert_nothing_left()


def test_run_context_manager_cleans_up_after_an_exception(world: Inspector) -> None:
    seen: list[str] = []

    def body() -> None:
        with Sandbox.run(SandboxSpec(name="ctx")) as sb:
            seen.append(sb.state)
            raise RuntimeError("inside")

    with pytest.raises(RuntimeError, match="inside"):
        body()
    assert seen == ["running"]
    world.assert_nothing_left()


def test_run_context_manager_cleans_up_after_ctrl_c(world: Inspector) -> None:
    with pytest.raises(KeyboardInterrupt), Sandbox.run(SandboxSpec(name="ctx")):
        raise KeyboardInterrupt
    world.assert_nothing_left()


def test_nat_network_endpoint_per_sandbox(world: Inspector) -> None:
    a = Sandbox.create(SandboxSpec(name="n1", network="nat"))
    b = Sandbox.create(SandboxSpec(name="n2", network="nat"))
    assert len(world.endpoints()) == 2
    assert a.record.endpoint_ids != b.record.endpoint_ids
    a.start()
    assert a.inspect()["endpoints"] == list(a.record.endpoint_ids)
    a.remove(force=True)
    assert len(world.endpoints()) == 1
    b.remove(force=True)
    world.assert_nothing_left()


def test_missing_windows_sandbox_base_gives_the_remedy(
    world: Inspector, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from hcs_sandbox.sandbox import storage

    empty = tmp_path / "ProgramData"
    empty.mkdir()
    monkeypatch.setattr(storage, "_program_data_text", lambda: str(empty))
    with pytest.raises(errors.StorageError, match="Windows Sandbox") as info:
        Sandbox.create(SandboxSpec(name="nobase"))
    assert "Containers-DisposableClientVM" in str(info.value)
    world.assert_nothing_left()


def test_a_sandbox_keeps_its_store_until_someone_else_writes(
    world: Inspector, monkeypatch: pytest.MonkeyPatch, state_dir: Path
) -> None:
    """A Sandbox opens its store once and re-checks it before each verb (Store.is_current):
    a write by another connection (another process) makes it open a fresh one."""
    import sqlite3

    from hcs_sandbox.sandbox import sandbox as sandbox_mod
    from hcs_sandbox.sandbox.store import open_store

    # Make the database (its first open migrates it).  (Sandbox.list() made it before
    # session 17; a read makes no state directory now.)
    open_store(state_dir).close()
    opened: list[object] = []
    real = sandbox_mod._store
    monkeypatch.setattr(
        sandbox_mod, "_store", lambda state, **kw: opened.append(state) or real(state, **kw)
    )
    sb = Sandbox.create(SandboxSpec(name="held"))
    assert len(opened) == 1
    sb.start()
    assert sb.state == "running"
    assert len(opened) == 1  # no store opened per verb
    db = sb._db()
    other = sqlite3.connect(db.path)  # another process's connection writes
    try:
        other.execute('UPDATE sandboxes SET labels = \'{"by": "other"}\'')
        other.commit()
    finally:
        other.close()
    sb.stop(timeout=5)
    assert len(opened) == 2  # noticed the other writer: opened (and checked) it again
    assert sb.record.labels == {"by": "other"}
    sb.remove()
    world.assert_nothing_left()


def test_start_and_stop_on_a_held_handle_ask_hcs_no_state(world: Inspector, sim: Any) -> None:
    """The object that created the system holds its handle: start and stop read the record
    and call HCS's start/shutdown directly, with no state query before (HCS refuses what
    does not fit the state; see the next tests)."""
    sb = Sandbox.create(SandboxSpec(name="held"))
    before = sim.calls().get("HcsGetComputeSystemProperties", 0)
    sb.start()
    sb.stop(timeout=5)
    assert sim.calls().get("HcsGetComputeSystemProperties", 0) == before
    assert sb.record.state == "stopped"
    assert "started" in sb.logs()
    assert "stopped" in sb.logs()
    sb.remove()
    world.assert_nothing_left()


def test_start_on_a_held_handle_of_a_system_started_elsewhere(world: Inspector) -> None:
    """The record still says created, but something else started the system: HCS refuses
    the start (HCS_E_INVALID_STATE) and the checked path reports the real state; the
    running system is left alone."""
    from hcs_sandbox.hcs.system import ComputeSystem

    sb = Sandbox.create(SandboxSpec(name="elsewhere"))
    with ComputeSystem.open(sb.system_id) as other:
        other.start()
    with pytest.raises(errors.SandboxStateError) as info:
        sb.start()
    assert info.value.state == "running"
    assert sb.record.state == "running"
    assert [s["Id"].lower() for s in world.systems()] == [sb.system_id.lower()]
    sb.remove(force=True)
    world.assert_nothing_left()


def test_stop_on_a_held_handle_of_a_system_paused_elsewhere(world: Inspector) -> None:
    """The record says running, but something else paused the system: HCS refuses the
    shutdown, the checked path sees ``paused`` and terminates it, as before."""
    from hcs_sandbox.hcs.system import ComputeSystem

    sb = Sandbox.create(SandboxSpec(name="paused-elsewhere"))
    sb.start()
    with ComputeSystem.open(sb.system_id) as other:
        other.pause()
    sb.stop(timeout=5)
    assert sb.state == "stopped"
    assert world.systems() == []
    sb.remove()
    world.assert_nothing_left()


def test_stop_on_a_held_handle_of_a_system_terminated_elsewhere(world: Inspector) -> None:
    from hcs_sandbox.hcs.system import ComputeSystem

    sb = Sandbox.create(SandboxSpec(name="gone-elsewhere"))
    sb.start()
    with ComputeSystem.open(sb.system_id) as other:
        other.terminate()
        other.wait(5)
    sb.stop(timeout=5)
    assert sb.state == "stopped"
    sb.remove()
    world.assert_nothing_left()


def test_remove_marks_a_settled_record_in_one_compare_and_set(world: Inspector) -> None:
    """remove() of a stopped sandbox: one update (compare-and-set on the settled states),
    no read before it; any other state goes through the checked path, as before."""
    from hcs_sandbox.sandbox import sandbox as sandbox_mod
    from hcs_sandbox.sandbox.store import LIVE_STATES, STATES

    assert set(sandbox_mod._SETTLED) == set(STATES) - set(LIVE_STATES) - {"creating"}
    sb = Sandbox.create(SandboxSpec(name="settled"))
    sb.start()
    sb.stop(timeout=5)
    gets: list[str] = []
    db = sb._db()
    real_get = db.get
    db.get = lambda key, **kw: gets.append(key) or real_get(key, **kw)  # type: ignore[method-assign]
    sb.remove()
    assert gets == []
    world.assert_nothing_left()
    # A running one still needs force, and a record removed meanwhile is no error.
    sb = Sandbox.create(SandboxSpec(name="running"))
    sb.start()
    with pytest.raises(errors.SandboxStateError):
        sb.remove()
    other = Sandbox.get("running")
    other.remove(force=True)
    other.close()
    sb.remove()
    sb.remove(force=True)
    world.assert_nothing_left()


@pytest.mark.parametrize("where", ["call", "result"])
def test_a_refused_start_on_a_held_handle_is_not_retried(
    world: Inspector, sim: Any, where: str
) -> None:
    """HCS refuses the start (HCS_E_INVALID_STATE) but still says Created: a real failure,
    raised as before -- not a second start."""
    sb = Sandbox.create(SandboxSpec(name="refused"))
    before = sim.calls().get("HcsStartComputeSystem", 0)
    sim.inject("HcsStartComputeSystem", hresult=0x80370105, where=where)
    with pytest.raises(errors.InvalidStateError):
        sb.start()
    assert sim.calls().get("HcsStartComputeSystem", 0) == before + 1
    assert sb.state == "created"
    sb.start()  # the fault was one call only
    assert sb.state == "running"
    sb.remove(force=True)
    world.assert_nothing_left()


def test_a_refused_shutdown_of_a_running_system_terminates_it(world: Inspector, sim: Any) -> None:
    sb = Sandbox.create(SandboxSpec(name="refused-stop"))
    sb.start()
    before = sim.calls().get("HcsShutDownComputeSystem", 0)
    sim.inject("HcsShutDownComputeSystem", hresult=0x80370105)
    sb.stop(timeout=5)
    assert sim.calls().get("HcsShutDownComputeSystem", 0) == before + 1
    assert sb.state == "stopped"
    assert sb.wait(1).exit_type == "ForcedExit"
    sb.remove()
    world.assert_nothing_left()


def test_forced_remove_asks_hcs_no_state(world: Inspector, sim: Any) -> None:
    """remove(force=True) needs no state (no check can refuse): no state query, and the
    running system is terminated by the release as before."""
    Sandbox.create(SandboxSpec(name="forced")).start()
    sb = Sandbox.get("forced")
    before = sim.calls().get("HcsGetComputeSystemProperties", 0)
    sb.remove(force=True)
    assert sim.calls().get("HcsGetComputeSystemProperties", 0) == before
    world.assert_nothing_left()
    sb.remove(force=True)  # gone already: no error


_RESTART_ELSEWHERE = (
    "from hcs_sandbox.sandbox.sandbox import Sandbox\n"
    "s = Sandbox.get('kept'); s.stop(timeout=5); s.start(); s.close()\n"
)


@pytest.mark.parametrize("verb", ["stop", "start"])
def test_a_held_handle_of_a_system_made_again_elsewhere(
    world: Inspector,
    sim: Any,
    sim_state_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    verb: str,
) -> None:
    """Another process stops a persistent sandbox and starts it again (a new system under
    the same id) before this process hears of the old system's exit: this object's handle
    is stale.  stop() must stop the NEW system, start() must report it running; neither
    may record ``stopped`` while it runs."""
    import os
    import subprocess
    import sys

    # The exit made by the other process is heard of late (the simulator is shared).
    monkeypatch.setattr(sim, "watch_interval", 30.0)
    sb = Sandbox.create(SandboxSpec(name="kept", persistence="persistent"))
    sb.start()
    env = {**os.environ, "HCS_SANDBOX_SIMULATOR": str(sim_state_dir)}
    subprocess.run([sys.executable, "-c", _RESTART_ELSEWHERE], check=True, env=env, timeout=60)
    if verb == "stop":
        sb.stop(timeout=5)
        assert sb.record.state == "stopped"
        assert world.systems() == []
    else:
        with pytest.raises(errors.SandboxStateError) as info:
            sb.start()
        assert info.value.state == "running"
        assert sb.record.state == "running"
        assert [s["Id"].lower() for s in world.systems()] == [sb.system_id.lower()]
    sb.remove(force=True)
    world.assert_nothing_left()


def test_a_failed_start_leaves_a_system_started_elsewhere_alone(world: Inspector, sim: Any) -> None:
    """Whatever code HCS refuses the start with (here E_FAIL, not a state code), a system
    that something else started meanwhile is not the failed start's to clean up."""
    from hcs_sandbox.hcs.system import ComputeSystem

    sb = Sandbox.create(SandboxSpec(name="raced"))
    with ComputeSystem.open(sb.system_id) as other:
        other.start()
    sim.inject("HcsStartComputeSystem", hresult=0x80004005)
    with pytest.raises(errors.SandboxStateError) as info:
        sb.start()
    assert info.value.state == "running"
    assert [s["Id"].lower() for s in world.systems()] == [sb.system_id.lower()]
    sb.remove(force=True)
    world.assert_nothing_left()


def test_forced_remove_when_hcs_cannot_open_the_system(world: Inspector, sim: Any) -> None:
    """rm -f while HCS refuses to open the system (access denied): the failure is reported
    like any other step's (logged, the record stays ``removing`` for a retry or prune), and
    the retry removes everything."""
    Sandbox.create(SandboxSpec(name="denied")).start()
    sb = Sandbox.get("denied")  # a fresh object, as the CLI's rm has
    sim.inject("HcsOpenComputeSystem", hresult=0x80070005, times=2)
    with pytest.raises(errors.HcsError):
        sb.remove(force=True)
    again = Sandbox.get("denied")
    assert again.record.state == "removing"
    assert "remove incomplete" in again.logs()
    again.remove(force=True)
    world.assert_nothing_left()


def test_a_start_that_times_out_is_this_starts_failure(world: Inspector) -> None:
    """HCS may have started the VM when the start's result timed out ("HCS is still running
    it"): that is this start's failure, not a start made elsewhere -- the system is
    terminated, the record says stopped and the timeout is raised, as before."""
    sb = Sandbox.create(SandboxSpec(name="slow"))
    system = sb._held_system()
    assert system is not None
    real = system.start

    def start_then_time_out(*args: Any, **kwargs: Any) -> None:
        real(*args, **kwargs)
        raise errors.OperationTimeoutError(
            "no result within 240 s; HCS is still running it", hresult=0x80370118
        )

    system.start = start_then_time_out  # type: ignore[method-assign]
    with pytest.raises(errors.OperationTimeoutError):
        sb.start()
    assert sb.record.state == "stopped"
    assert world.systems() == []
    sb.remove()
    world.assert_nothing_left()


def test_create_steps_go_to_progress_and_to_the_debug_log(
    world: Inspector, caplog: pytest.LogCaptureFixture
) -> None:
    # Each step is logged at DEBUG when that level is on, whether or not a progress
    # callback is given; the callback gets the same lines.
    import logging

    steps: list[str] = []
    with caplog.at_level(logging.DEBUG, logger="hcs_sandbox.sandbox"):
        Sandbox.create(SandboxSpec(name="told"), progress=steps.append).remove()
        Sandbox.create(SandboxSpec(name="logged")).remove()
    logged = [r.getMessage() for r in caplog.records if r.name == "hcs_sandbox.sandbox"]
    assert steps[0] == "checking the base image"
    assert steps[-1] == "created"
    assert "creating the compute system" in steps
    for step in steps:
        assert logged.count(step) == 2  # once per create, with and without a callback
    world.assert_nothing_left()
