"""Lifecycle verbs on a ``created`` (never started) sandbox, through the API (review RV7a
finding 5): stop and kill leave it ``created`` and startable (docs/api.md: stop "does nothing
when not running"; docker leaves a created container created); pause, resume and wait say
what to do."""

from __future__ import annotations

import threading

import pytest

from hcs_sandbox import errors
from hcs_sandbox.sandbox.sandbox import Sandbox
from hcs_sandbox.sandbox.spec import SandboxSpec


@pytest.mark.parametrize("verb", ["stop", "kill"])
def test_stop_or_kill_of_created_leaves_it_startable(verb: str) -> None:
    sb = Sandbox.create(SandboxSpec(name=f"c-{verb}"))
    try:
        sb.stop(timeout=5) if verb == "stop" else sb.kill()
        assert sb.state == "created"
        again = Sandbox.get(f"c-{verb}")  # another object: the record says so too
        assert again.state == "created"
        again.close()
        sb.start()
        assert sb.state == "running"
        sb.stop(timeout=5)
        assert sb.state == "stopped"
    finally:
        sb.remove(force=True)


def test_stop_and_kill_of_created_write_no_log_line() -> None:
    sb = Sandbox.create(SandboxSpec(name="c-log"))
    try:
        sb.stop(timeout=5)
        sb.kill()
        lines = [line.split(" ", 1)[1] for line in sb.logs().splitlines()]
        assert lines == ["created"]
    finally:
        sb.remove(force=True)


def test_start_of_stopped_ephemeral_names_both_ways_to_persist() -> None:
    sb = Sandbox.create(SandboxSpec(name="eph"))
    try:
        sb.start()
        sb.kill()
        with pytest.raises(errors.SandboxStateError) as caught:
            sb.start()
        remedy = caught.value.remedy or ""
        assert "--persistent" in remedy  # the CLI flag
        assert "persistence='persistent'" in remedy  # the API field
        assert "hcs-sandbox rm eph" in remedy
    finally:
        sb.remove(force=True)


@pytest.mark.parametrize("verb", ["pause", "resume"])
def test_pause_resume_of_created_refused_with_a_remedy(verb: str) -> None:
    sb = Sandbox.create(SandboxSpec(name=f"p-{verb}"))
    try:
        with pytest.raises(errors.SandboxStateError) as caught:
            getattr(sb, verb)()
        assert caught.value.state == "created"
        assert "hcs-sandbox start p-" in (caught.value.remedy or "")
        assert sb.state == "created"
    finally:
        sb.remove(force=True)


def test_resume_of_running_says_it_is_not_paused() -> None:
    sb = Sandbox.create(SandboxSpec(name="r-run"))
    try:
        sb.start()
        with pytest.raises(errors.SandboxStateError) as caught:
            sb.resume()
        assert "nothing to resume" in (caught.value.remedy or "")
        # The state once, not again in the remedy (QA tester F9).
        assert str(caught.value).count("running") == 1
    finally:
        sb.remove(force=True)


def test_wait_on_created_times_out_with_a_start_remedy() -> None:
    sb = Sandbox.create(SandboxSpec(name="w-created"))
    try:
        with pytest.raises(errors.OperationTimeoutError) as caught:
            sb.wait(timeout=0.3)
        assert "still created" in caught.value.message
        assert "hcs-sandbox start w-created" in (caught.value.remedy or "")
        assert sb.state == "created"
    finally:
        sb.remove(force=True)


def test_wait_on_created_returns_once_started_and_stopped_elsewhere() -> None:
    sb = Sandbox.create(SandboxSpec(name="w-later"))
    try:
        done: list[object] = []
        waiter = threading.Thread(target=lambda: done.append(sb.wait(timeout=30)))
        waiter.start()
        other = Sandbox.get("w-later")
        other.start()
        other.stop(timeout=5)
        other.close()
        waiter.join(30)
        assert not waiter.is_alive()
        assert done
        assert sb.state == "stopped"
    finally:
        sb.remove(force=True)
