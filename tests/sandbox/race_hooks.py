"""Hooks for the tests that make a race between two processes happen deterministically: the
other process is another ``Sandbox`` object acting at a chosen step of this one (no sleeps).
Used by test_restart_taken_over.py and test_state_writes_taken_over.py."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from hcs_sandbox import errors
from hcs_sandbox.sandbox.sandbox import Sandbox

E_ACCESSDENIED = 0x80070005


def force_remove(name: str, sim: Any | None = None) -> str:
    """Another object's ``rm -f``; with ``sim`` its endpoint deletion is refused once, so the
    remove stops half way and leaves the record ``removing`` (as documented)."""
    other = Sandbox.get(name)
    try:
        if sim is not None:
            sim.inject("HcnDeleteEndpoint", hresult=E_ACCESSDENIED)
        try:
            other.remove(force=True)
        except errors.HcsError as exc:
            return f"incomplete: {exc.name}"
        return "removed"
    finally:
        other.close()


def at_step(step: str, action: Callable[[], object]) -> tuple[Callable[[str], None], list[object]]:
    """A ``progress`` callback that runs ``action`` once, when the start reaches ``step``."""
    results: list[object] = []

    def progress(text: str) -> None:
        if text == step and not results:
            results.append(action())

    return progress, results


@contextlib.contextmanager
def after_start_runs(sb: Sandbox, action: Callable[[], object]) -> Iterator[list[object]]:
    """Run ``action`` once, right after ``sb``'s start started the system (after
    ``_after_start``), before the start writes ``running``."""
    real = sb._after_start
    results: list[object] = []

    def after_start(system: Any, progress: Any) -> None:
        real(system, progress)
        if not results:
            results.append(action())

    sb._after_start = after_start  # type: ignore[method-assign]
    try:
        yield results
    finally:
        del sb._after_start
