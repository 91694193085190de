"""The state writes at the end of a plain ``start`` (of a ``created`` sandbox, with or without
a held handle), ``pause`` and ``resume``, and the ``stopped`` writes of a failed start, when
another process acts between the HCS call and the record write: a forced remove (``removing``,
then deleted) or a stop.  The verb writes only over the record as it read it
(compare-and-set); another process's ``removing`` or delete is never undone, the record ends
up describing what HCS has, and the verb raises when its outcome was overtaken (review of
9a8e7be: the writes left unconditional).  Each race is made deterministic by a hook between
the two steps (no sleeps)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest
from race_hooks import after_start_runs, at_step, force_remove

from hcs_sandbox import errors
from hcs_sandbox.sandbox.sandbox import Sandbox
from hcs_sandbox.sandbox.spec import SandboxSpec

if TYPE_CHECKING:
    from conftest import Inspector

E_ACCESSDENIED = 0x80070005


def _created(name: str, *, held: bool) -> Sandbox:
    """A ``created`` sandbox with a NAT endpoint (so a forced remove can be stopped half way).
    ``held``: the object that made it (it holds the system's handle: ``_start_held``);
    else a fresh object, as another process has (the checked path of ``start``)."""
    sb = Sandbox.create(SandboxSpec(name=name, network="nat"))
    if held:
        return sb
    sb.close()
    return Sandbox.get(name)


def _running(name: str) -> Sandbox:
    sb = _created(name, held=True)
    sb.start()
    return sb


def _other(name: str, verb: Callable[[Sandbox], object]) -> Callable[[], object]:
    """Another object (as another process has) doing ``verb``; returns the state it leaves."""

    def act() -> object:
        other = Sandbox.get(name)
        try:
            verb(other)
            return other.record.state
        finally:
            other.close()

    return act


@contextlib.contextmanager
def _after_hcs(sb: Sandbox, op: str, action: Callable[[], object]) -> Iterator[list[object]]:
    """Run ``action`` once, right after HCS did ``op`` (``pause``/``resume``) through ``sb``'s
    handle, before ``sb`` writes the new state."""
    system = sb._held_system()
    assert system is not None
    real = getattr(system, op)
    results: list[object] = []

    def hooked(*args: Any, **kwargs: Any) -> None:
        real(*args, **kwargs)
        if not results:
            results.append(action())

    setattr(system, op, hooked)
    try:
        yield results
    finally:
        with contextlib.suppress(AttributeError):
            delattr(system, op)


# ------------------------------------------------------------------ start of a created sandbox


@pytest.mark.parametrize("held", [True, False], ids=["held", "checked"])
def test_start_is_not_marked_running_over_a_forced_remove(
    sim: Any, world: Inspector, held: bool
) -> None:
    # Another process's rm -f terminates the system after it started, before the start writes
    # "running", and stops half way (record "removing").  Before: the start wrote "running"
    # over "removing" (no system; prune and rm no longer finished the remove) and returned.
    sb = _created("gone", held=held)
    with (
        after_start_runs(sb, lambda: force_remove("gone", sim)) as removed,
        pytest.raises(errors.SandboxStateError) as caught,
    ):
        sb.start()
    assert removed == ["incomplete: E_ACCESSDENIED"]
    assert caught.value.state == "removing"
    assert "another process" in caught.value.message
    assert Sandbox.get("gone").record.state == "removing"
    assert world.systems() == []
    sb.close()
    force_remove("gone")  # the documented remedy finishes it
    world.assert_nothing_left()


@pytest.mark.parametrize("held", [True, False], ids=["held", "checked"])
def test_start_after_a_finished_forced_remove_raises_not_found(
    sim: Any, world: Inspector, held: bool
) -> None:
    # The remove finished (record deleted): the start says so, and nothing is left.
    sb = _created("deleted", held=held)
    with (
        after_start_runs(sb, lambda: force_remove("deleted")) as removed,
        pytest.raises(errors.SandboxNotFoundError),
    ):
        sb.start()
    assert removed == ["removed"]
    sb.close()
    world.assert_nothing_left()


@pytest.mark.parametrize("held", [True, False], ids=["held", "checked"])
def test_start_is_not_marked_running_over_another_process_stop(
    sim: Any, world: Inspector, held: bool
) -> None:
    # Another process's stop sees the system running (its refresh writes "running"), stops
    # it and writes "stopped", all before this start's write.  Before: the start wrote
    # "running" over "stopped" (a running record with no system) and returned.
    sb = _created("stopped", held=held)
    with (
        after_start_runs(sb, _other("stopped", lambda o: o.stop(timeout=5))) as stopped,
        pytest.raises(errors.SandboxStateError) as caught,
    ):
        sb.start()
    assert stopped == ["stopped"]
    assert caught.value.state == "stopped"
    # What to do (review RV17): an ephemeral sandbox's contents are gone once stopped.
    assert caught.value.remedy == (
        "an ephemeral sandbox's contents are gone once it stops: remove it "
        "('hcs-sandbox rm stopped') and run a new one"
    )
    assert world.systems() == []
    assert Sandbox.get("stopped").state == "stopped"
    sb.remove()
    world.assert_nothing_left()


def test_persistent_start_overtaken_by_a_stop_says_start_it_again(
    sim: Any, world: Inspector
) -> None:
    # The same race for a persistent sandbox: its disk is kept, so starting it again works.
    sb = Sandbox.create(SandboxSpec(name="kept", persistence="persistent"))
    with (
        after_start_runs(sb, _other("kept", lambda o: o.stop(timeout=5))) as stopped,
        pytest.raises(errors.SandboxStateError) as caught,
    ):
        sb.start()
    assert stopped == ["stopped"]
    assert caught.value.state == "stopped"
    assert caught.value.remedy == "start it again: 'hcs-sandbox start kept'"
    sb.start()  # the remedy works
    assert sb.state == "running"
    sb.remove(force=True)
    world.assert_nothing_left()


@pytest.mark.parametrize("held", [True, False], ids=["held", "checked"])
def test_start_succeeds_when_another_object_saw_it_running(
    sim: Any, world: Inspector, held: bool
) -> None:
    # Another object's refresh wrote "running" (what this start did) before the start's own
    # write: the outcome is what the start asked for, so it succeeds, and still records its
    # start time and log line.
    sb = _created("seen", held=held)
    with after_start_runs(sb, _other("seen", lambda o: o.state)) as seen:
        sb.start()
    assert seen == ["running"]
    record = Sandbox.get("seen").record
    assert record.state == "running"
    assert record.started_at is not None
    assert sb.logs().splitlines()[-1].endswith(" started")
    sb.remove(force=True)
    world.assert_nothing_left()


def test_start_of_a_system_gone_meanwhile_leaves_a_forced_remove(
    sim: Any, world: Inspector
) -> None:
    # The start found the system "created" in HCS; then another process's rm -f terminated
    # it (stopping half way) before the start opened it again.  Before: the start wrote
    # "stopped" over "removing".
    sb = _created("vanished", held=False)
    real_open = sb._open_system
    calls: list[object] = []

    def open_system() -> Any:
        calls.append(None)
        if len(calls) == 2:  # the start's own open, after its state check
            held = sb._held_system()
            assert held is not None
            calls.append(force_remove("vanished", sim))
            held.wait(5)  # the exit event reaches this object's handle
        return real_open()

    sb._open_system = open_system  # type: ignore[method-assign]
    with pytest.raises(errors.SandboxStateError) as caught:
        sb.start()
    assert "incomplete: E_ACCESSDENIED" in calls
    assert caught.value.state == "removing"
    assert Sandbox.get("vanished").record.state == "removing"
    assert world.systems() == []
    del sb._open_system
    sb.close()
    force_remove("vanished")
    world.assert_nothing_left()


@pytest.mark.parametrize("fails", [False, True], ids=["refused", "fails"])
def test_start_leaves_the_record_a_forced_remove_took_before_it(
    sim: Any, world: Inspector, fails: bool
) -> None:
    # Another process's rm -f terminates the created system right before this start starts
    # it, and stops half way (record "removing").  HCS then refuses the start (the system is
    # gone): nothing was done here, and the start says what the sandbox is now; or the start
    # fails for a reason of its own (``fails``), and its clean-up leaves "removing" alone.
    # Before: the clean-up wrote "stopped" over "removing" (and a refused start raised HCS's
    # error).
    sb = _created("taken", held=False)

    def remove() -> object:
        removed = force_remove("taken", sim)
        if fails:
            sim.inject("HcsStartComputeSystem", hresult=E_ACCESSDENIED)
        return removed

    progress, removed = at_step("starting", remove)
    with pytest.raises(errors.HcsSandboxError) as caught:
        sb.start(progress=progress)
    assert removed == ["incomplete: E_ACCESSDENIED"]
    if fails:
        assert isinstance(caught.value, errors.HcsError)
        assert caught.value.name == "E_ACCESSDENIED"
    else:
        assert isinstance(caught.value, errors.SandboxStateError)
        assert caught.value.state == "removing"
    assert Sandbox.get("taken").record.state == "removing"
    assert world.systems() == []
    sb.close()
    force_remove("taken")
    world.assert_nothing_left()


@pytest.mark.parametrize("fails", [False, True], ids=["refused", "fails"])
def test_start_after_a_forced_remove_finished_before_it_logs_no_failure(
    sim: Any, world: Inspector, caplog: pytest.LogCaptureFixture, fails: bool
) -> None:
    # The remove finished (record deleted) before this start: a refused start says the
    # sandbox is gone; a start failing on its own has no record to mark, and that is not a
    # failure (before: HCS's refusal, and "could not record the failed start").
    sb = _created("went", held=False)

    def remove() -> object:
        removed = force_remove("went")
        if fails:
            sim.inject("HcsStartComputeSystem", hresult=E_ACCESSDENIED)
        return removed

    progress, removed = at_step("starting", remove)
    with caplog.at_level(logging.WARNING), pytest.raises(errors.HcsSandboxError) as caught:
        sb.start(progress=progress)
    assert removed == ["removed"]
    expected = errors.HcsError if fails else errors.SandboxNotFoundError
    assert isinstance(caught.value, expected)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    sb.close()
    world.assert_nothing_left()


@pytest.mark.parametrize("held", [True, False], ids=["held", "checked"])
def test_start_leaves_the_system_another_process_started(
    sim: Any, world: Inspector, held: bool
) -> None:
    # Two starts of one created sandbox at once: the other one starts the system first, so
    # HCS refuses this one.  This start did nothing and says the sandbox is running; the
    # other start's system runs on.  Before (the start without a held handle): its clean-up
    # terminated the system the other start had just started and marked it stopped.
    sb = _created("twice", held=held)
    other = Sandbox.get("twice")
    try:
        progress, started = at_step("starting", other.start)
        with pytest.raises(errors.SandboxStateError) as caught:
            sb.start(progress=progress)
        assert started == [None]
        assert caught.value.state == "running"
        assert [s.get("State") for s in world.systems()] == ["Running"]
        assert Sandbox.get("twice").record.state == "running"
    finally:
        other.remove(force=True)
        sb.close()
    world.assert_nothing_left()


@pytest.mark.parametrize("persistence", ["ephemeral", "persistent"])
def test_start_refused_after_another_process_started_and_stopped_it(
    sim: Any, world: Inspector, persistence: str
) -> None:
    # The other process starts and stops it between this start's check and its HCS call:
    # HCS refuses this start, which did nothing.  Its error says what to do for that kind
    # of sandbox (review RV17 and the s9-cas report: before, "remove it with rm -f" also
    # for a persistent one, which only needs to be started again).
    sb = Sandbox.create(SandboxSpec(name="both", persistence=persistence))
    sb.close()
    sb = Sandbox.get("both")

    def start_and_stop() -> None:
        other = Sandbox.get("both")
        try:
            other.start()
            other.stop(timeout=5)
        finally:
            other.close()

    progress, done = at_step("starting", start_and_stop)
    with pytest.raises(errors.SandboxStateError) as caught:
        sb.start(progress=progress)
    assert done == [None]
    assert caught.value.state == "stopped"
    if persistence == "persistent":
        assert caught.value.remedy == "start it again: 'hcs-sandbox start both'"
        sb.start()  # and it works
        assert sb.state == "running"
    else:
        assert caught.value.remedy is not None
        assert "contents are gone" in caught.value.remedy
    sb.remove(force=True)
    world.assert_nothing_left()


# ------------------------------------------------------------------ pause and resume


def _paused(name: str) -> Sandbox:
    sb = _running(name)
    sb.pause()
    return sb


@pytest.mark.parametrize("verb", ["pause", "resume"])
def test_pause_resume_not_recorded_over_another_process_stop(
    sim: Any, world: Inspector, verb: str
) -> None:
    # Another process stops the sandbox right after HCS paused (resumed) it, before the
    # verb's write.  Before: "paused" ("running") was written over "stopped": a record that
    # says the sandbox is there, with no system.
    sb = _running(verb) if verb == "pause" else _paused(verb)
    with (
        _after_hcs(sb, verb, _other(verb, lambda o: o.stop(timeout=5))) as stopped,
        pytest.raises(errors.SandboxStateError) as caught,
    ):
        getattr(sb, verb)()
    assert stopped == ["stopped"]
    assert caught.value.state == "stopped"
    assert world.systems() == []
    assert Sandbox.get(verb).state == "stopped"
    sb.remove()
    world.assert_nothing_left()


@pytest.mark.parametrize("verb", ["pause", "resume"])
def test_pause_resume_not_recorded_over_a_forced_remove(
    sim: Any, world: Inspector, verb: str
) -> None:
    # Another process's rm -f (stopping half way) right after HCS paused (resumed) the
    # sandbox.  Before: "removing" was overwritten.
    sb = _running(verb) if verb == "pause" else _paused(verb)
    with (
        _after_hcs(sb, verb, lambda: force_remove(verb, sim)) as removed,
        pytest.raises(errors.SandboxStateError) as caught,
    ):
        getattr(sb, verb)()
    assert removed == ["incomplete: E_ACCESSDENIED"]
    assert caught.value.state == "removing"
    assert Sandbox.get(verb).record.state == "removing"
    assert world.systems() == []
    sb.close()
    force_remove(verb)
    world.assert_nothing_left()


def test_pause_not_recorded_over_another_process_resume(sim: Any, world: Inspector) -> None:
    # Right after HCS paused the sandbox, another process resumes it (its refresh writes
    # "paused", its resume "running"): the record must say running, as HCS does, and the
    # pause says it was overtaken.  Before: "paused" over "running", with the VM running.
    sb = _running("undone")
    with (
        _after_hcs(sb, "pause", _other("undone", lambda o: o.resume())) as resumed,
        pytest.raises(errors.SandboxStateError) as caught,
    ):
        sb.pause()
    assert resumed == ["running"]
    assert caught.value.state == "running"
    assert Sandbox.get("undone").record.state == "running"
    assert [s.get("State") for s in world.systems()] == ["Running"]
    sb.remove(force=True)
    world.assert_nothing_left()


@pytest.mark.parametrize("verb", ["pause", "resume"])
def test_pause_resume_succeed_when_another_object_saw_the_change(
    sim: Any, world: Inspector, verb: str
) -> None:
    # Another object's refresh wrote the new state first: same outcome, success, and the
    # verb's log line is still written.
    sb = _running(verb) if verb == "pause" else _paused(verb)
    with _after_hcs(sb, verb, _other(verb, lambda o: o.state)) as seen:
        getattr(sb, verb)()
    want = "paused" if verb == "pause" else "running"
    assert seen == [want]
    assert Sandbox.get(verb).record.state == want
    assert sb.logs().splitlines()[-1].endswith(" paused" if verb == "pause" else " resumed")
    sb.remove(force=True)
    world.assert_nothing_left()
