"""``remove`` after this object's own ``stop``/``kill`` does not ask HCS for a system whose exit
event it already got (one HcsOpenComputeSystem round trip fewer per lifecycle), unless the record
changed meanwhile: then it looks, and terminates what it finds."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from hcs_sandbox.sandbox.maintenance import RESTARTING_KEY
from hcs_sandbox.sandbox.sandbox import Sandbox
from hcs_sandbox.sandbox.spec import SandboxSpec

if TYPE_CHECKING:
    from conftest import Inspector


def _opens(sim: Any) -> int:
    return int(sim.calls().get("HcsOpenComputeSystem", 0))


def test_remove_after_own_stop_does_not_open_the_exited_system(sim: Any, world: Inspector) -> None:
    sb = Sandbox.create(SandboxSpec(name="quiet"))
    sb.start()
    sb.stop(timeout=5)
    before = _opens(sim)
    sb.remove()
    assert _opens(sim) == before
    world.assert_nothing_left()


def test_stop_makes_no_wait_when_the_exit_came_with_the_shutdown(
    sim: Any, world: Inspector, monkeypatch: Any
) -> None:
    """s13-teardown: the exit event arrived before the shutdown's operation completed (the
    simulator's order): stop records it without a wait for it (what the wait would return
    at once is read from the handle); the exit status is recorded all the same."""
    from hcs_sandbox.hcs.system import ComputeSystem

    sb = Sandbox.create(SandboxSpec(name="waitless"))
    sb.start()
    waits: list[object] = []
    real_wait = ComputeSystem.wait

    def counted(self: ComputeSystem, timeout: float | None = None) -> dict[str, Any]:
        waits.append(timeout)
        return real_wait(self, timeout)

    monkeypatch.setattr(ComputeSystem, "wait", counted)
    sb.stop(timeout=5)
    assert waits == []
    assert sb.record.state == "stopped"
    assert sb.record.extra.get("exit", {}).get("ExitType") == "GracefulExit"
    sb.remove()
    world.assert_nothing_left()


def test_remove_after_own_kill_does_not_open_the_exited_system(sim: Any, world: Inspector) -> None:
    sb = Sandbox.create(SandboxSpec(name="killed"))
    sb.start()
    sb.kill()
    before = _opens(sim)
    sb.remove(force=True)
    assert _opens(sim) == before
    world.assert_nothing_left()


def test_remove_looks_again_after_another_object_restarted_the_sandbox(
    sim: Any, world: Inspector
) -> None:
    first = Sandbox.create(SandboxSpec(name="kept", persistence="persistent"))
    first.start()
    first.stop(timeout=5)
    second = Sandbox.get("kept")
    second.start()  # a new compute system under the same id
    try:
        before = _opens(sim)
        first.remove(force=True)  # must find and terminate the new system
        assert _opens(sim) > before
        world.assert_nothing_left()
    finally:
        second.close()
        first.close()


def test_remove_of_a_fresh_object_asks_hcs(sim: Any, world: Inspector) -> None:
    sb = Sandbox.create(SandboxSpec(name="fresh"))
    sb.start()
    sb.stop(timeout=5)
    sb.close()
    other = Sandbox.get("fresh")  # knows nothing of the exit
    before = _opens(sim)
    other.remove()
    assert _opens(sim) > before
    world.assert_nothing_left()


@contextlib.contextmanager
def _after_stop_closes(sb: Sandbox, action: Callable[[], object]) -> Iterator[list[object]]:
    """Run ``action`` once, right after ``sb``'s stop has released its handle: after the exit
    event, before the stop writes the record (the window in which another object or process
    may act).  Yields what ``action`` returned (empty until it ran)."""
    real_close = sb.close
    results: list[object] = []

    def close() -> None:
        real_close()
        if not results:
            results.append(action())

    sb.close = close  # type: ignore[method-assign]
    try:
        yield results
    finally:
        real_close()


def test_remove_looks_when_a_restart_came_between_the_exit_and_the_stopped_write(
    sim: Any, world: Inspector
) -> None:
    # Another object restarts the persistent sandbox right after this object's handle got
    # the exit event, before this object writes "stopped" (review RV14): that write lands
    # on the restart's record, so it is not the stop's own and remove must look (and find
    # and terminate the new system).
    first = Sandbox.create(SandboxSpec(name="raced", persistence="persistent"))
    first.start()
    second = Sandbox.get("raced")
    try:
        with _after_stop_closes(first, second.start) as restarted:
            first.stop(timeout=5)
            assert restarted
            # The stop does not mark stopped a sandbox another object made again meanwhile.
            assert first.record.state == "running"
            assert Sandbox.get("raced").record.state == "running"
            before = _opens(sim)
            first.remove(force=True)
            assert _opens(sim) > before
            world.assert_nothing_left()
    finally:
        second.close()


def test_stop_records_the_exit_over_a_concurrent_stopped_mark(sim: Any, world: Inspector) -> None:
    # Another object's refresh wrote "stopped" (no exit status) after the exit, before this
    # stop's own write: the stop still records its exit status and its log line.
    sb = Sandbox.create(SandboxSpec(name="marked"))
    sb.start()
    other = Sandbox.get("marked")
    try:
        # other.state refreshes: HCS says gone -> "stopped" written
        with _after_stop_closes(sb, lambda: other.state) as marked:
            sb.stop(timeout=5)
            assert marked == ["stopped"]
            assert sb.record.state == "stopped"
            assert "exit" in sb.record.extra
            assert sb.logs().splitlines()[-1].endswith("stopped")
            sb.remove()
            world.assert_nothing_left()
    finally:
        other.close()


def test_stop_leaves_a_record_another_process_marked_creating(sim: Any, world: Inspector) -> None:
    # After the exit, another process began a persistent restart (record "creating", its
    # system not made yet): the stop must not write "stopped" over it (review RV15).
    sb = Sandbox.create(SandboxSpec(name="begun", persistence="persistent"))
    sb.start()
    other = Sandbox.get("begun")

    def begin() -> object:
        return other._db().update(other.id, state="creating", merge_extra={RESTARTING_KEY: True})

    try:
        with _after_stop_closes(sb, begin) as begun:
            sb.stop(timeout=5)
            assert begun
            assert Sandbox.get("begun").record.state == "creating"
            sb.remove(force=True)
            world.assert_nothing_left()
    finally:
        other.close()


def test_stop_records_the_exit_when_hcs_cannot_tell_after_a_concurrent_write(
    sim: Any, world: Inspector
) -> None:
    # Another object wrote the record after the exit (a harmless change), and HCS then
    # refuses to open the system: the stop still records "stopped", its exit status and its
    # log line, and returns (review RV15).
    sb = Sandbox.create(SandboxSpec(name="refused"))
    sb.start()
    other = Sandbox.get("refused")

    def write() -> object:
        other._db().update(other.id, merge_extra={"note": "x"})
        return sim.inject("HcsOpenComputeSystem", hresult=0x80070005, times=1)

    try:
        with _after_stop_closes(sb, write) as wrote:
            sb.stop(timeout=5)
            assert wrote
            assert sb.record.state == "stopped"
            assert "exit" in sb.record.extra
            assert sb.logs().splitlines()[-1].endswith("stopped")
            sb.remove()
            world.assert_nothing_left()
    finally:
        other.close()
