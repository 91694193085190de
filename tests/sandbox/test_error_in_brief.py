"""Log lines, warnings and prune's failure lines carry an error's message and its specific
remedy, never the generic HCS remedy ("try again; ... doctor --deep ..."), which only makes
sense on the error line of the verb that failed (review RV17, finding 3)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from hcs_sandbox import errors
from hcs_sandbox.sandbox.maintenance import prune
from hcs_sandbox.sandbox.sandbox import Sandbox
from hcs_sandbox.sandbox.spec import SandboxSpec

if TYPE_CHECKING:
    from conftest import Inspector

E_FAIL = 0x80004005
E_ACCESSDENIED = 0x80070005


def test_in_brief_drops_only_the_generic_remedy() -> None:
    generic = errors.error_from_hresult(E_FAIL, function="HcsCreateComputeSystem")
    assert generic.remedy == errors.HCS_GENERIC_REMEDY  # the verb's error line keeps it
    assert errors.in_brief(generic) == generic.message
    specific = errors.error_from_hresult(E_ACCESSDENIED, function="HcsCreateComputeSystem")
    assert errors.in_brief(specific) == f"{specific.message} ({errors.ACCESS_REMEDY})"
    plain = errors.SpecError("bad value", remedy="use a good one")
    assert errors.in_brief(plain) == "bad value (use a good one)"
    assert errors.in_brief(ValueError("not ours")) == "not ours"


def test_remove_incomplete_log_line_has_no_generic_remedy(sim: Any, world: Inspector) -> None:
    sb = Sandbox.create(SandboxSpec(name="half", network="nat"))
    sim.inject("HcnDeleteEndpoint", hresult=E_FAIL)
    with pytest.raises(errors.HcsError) as caught:
        sb.remove(force=True)
    assert errors.HCS_GENERIC_REMEDY not in caught.value.remedy  # its own: how to finish
    log = Sandbox.get("half").logs()
    assert "remove incomplete: " in log
    assert "HcnDeleteEndpoint" in log
    assert "try again" not in log
    sb.remove(force=True)
    world.assert_nothing_left()


def test_prune_failure_lines_have_no_generic_remedy(sim: Any, world: Inspector) -> None:
    sb = Sandbox.create(SandboxSpec(name="orphan", network="nat"))
    sim.inject("HcnDeleteEndpoint", hresult=E_FAIL)
    with pytest.raises(errors.HcsError):
        sb.remove(force=True)  # left 'removing'; its owner (this process) then "exits"
    sb.close()
    Sandbox.get("orphan")._db().update(sb.id, owner_pid=0)
    sim.inject("HcnDeleteEndpoint", hresult=E_FAIL)
    result = prune()
    assert result.failures, result
    assert all("try again" not in line for line in result.failures), result.failures
    assert any("HcnDeleteEndpoint" in line for line in result.failures), result.failures
    prune()
    world.assert_nothing_left()


def test_logon_not_started_reason_has_no_generic_remedy(sim: Any, world: Inspector) -> None:
    # A failure that is not "the guest is not up yet" ends the logon attempts at once.
    sb = Sandbox.create(SandboxSpec(name="lg", logon_command="cmd /c echo hi"))
    try:
        sim.inject("HcsCreateProcess", hresult=E_FAIL, times=1000)
        sb.start()
        assert sb.logon_error is not None
        assert "HcsCreateProcess" in sb.logon_error
        assert "try again" not in sb.logon_error
        assert "try again" not in sb.logs()
    finally:
        sb.remove(force=True)
    world.assert_nothing_left()
