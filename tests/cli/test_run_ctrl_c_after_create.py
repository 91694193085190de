"""``hcs-sandbox run``: a Ctrl+C that lands right after ``Sandbox.create`` returned (while the
progress line is cleared, or as ``simulated`` is read), before the start, still stops and
removes (``--rm``) and closes the new sandbox: the command's clean-up covers it from the
moment create returns (before, that window was outside the ``try``: the record stayed and the
compute-system handle was never closed)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from cli_support import Result

from hcs_sandbox.sandbox.sandbox import Sandbox


def _live_systems() -> list[dict[str, object]]:
    from hcs_sandbox.hcs.system import enumerate_compute_systems

    return enumerate_compute_systems({"Owners": ["hcs-sandbox"]})


def _interrupt_first_simulated_read(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """``Sandbox.simulated`` raises KeyboardInterrupt once: the first thing ``run`` reads
    after create returns."""
    real: Any = Sandbox.simulated
    fired: list[str] = []

    def simulated(self: Sandbox) -> bool:
        if not fired:
            fired.append(self.name)
            raise KeyboardInterrupt
        return bool(real.fget(self))

    monkeypatch.setattr(Sandbox, "simulated", property(simulated))
    return fired


def test_ctrl_c_right_after_create_removes_with_rm(
    cli: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    fired = _interrupt_first_simulated_read(monkeypatch)
    result = cli("run", "--rm", "--name", "cc1", "--", "cmd", "/c", "echo", "hi")
    assert fired == ["cc1"]
    assert result.code == 130, result
    assert "hi" not in result.out
    assert cli("ls", "-a", "-q").out.strip() == ""
    assert _live_systems() == []


def test_ctrl_c_right_after_create_stops_without_rm(
    cli: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    fired = _interrupt_first_simulated_read(monkeypatch)
    result = cli("run", "--name", "cc2", "--", "cmd", "/c", "echo", "hi")
    assert fired == ["cc2"]
    assert result.code == 130, result
    assert "stopping the sandbox" in result.err
    assert _live_systems() == []  # stopped (and its handle closed: the leak guard checks)
    assert cli("rm", "cc2").code == 0
