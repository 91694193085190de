"""Review RV9b: stop/kill while another process starts the sandbox, wait's timeout."""

from __future__ import annotations

import math

import pytest

from hcs_sandbox import errors
from hcs_sandbox.sandbox.sandbox import Sandbox
from hcs_sandbox.sandbox.spec import SandboxSpec
from hcs_sandbox.sandbox.store import open_store


@pytest.mark.parametrize("verb", ["stop", "kill"])
@pytest.mark.parametrize("busy", ["creating", "removing"])
def test_stop_and_kill_refuse_a_sandbox_another_process_is_busy_with(verb: str, busy: str) -> None:
    sb = Sandbox.create(SandboxSpec(name="busy", persistence="persistent"))
    try:
        sb.start()
        sb.stop(timeout=2)
        with open_store(sb._state_dir) as store:  # another (live) process at work
            store.update(sb.id, expect_state="stopped", state=busy)
        with pytest.raises(errors.SandboxStateError, match=f"it is {busy}") as caught:
            getattr(Sandbox.get("busy"), verb)()
        assert "another process" in (caught.value.remedy or "")
        with open_store(sb._state_dir) as store:
            store.update(sb.id, expect_state=busy, state="stopped")
    finally:
        sb.close()
        Sandbox.get("busy").remove(force=True)


@pytest.mark.parametrize("timeout", [math.nan, -5.0])
def test_wait_refuses_a_negative_or_nan_timeout(timeout: float) -> None:
    sb = Sandbox.create(SandboxSpec(name="w"))
    try:
        with pytest.raises(errors.SpecError, match="timeout"):
            sb.wait(timeout)
    finally:
        sb.remove(force=True)
