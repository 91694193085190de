"""Root test configuration: every test runs against a fresh HCS simulator state directory, and
a test that leaves simulator handles or strings open (or frees them wrongly) fails.

Fixtures:
- ``sim_state_dir``: the test's simulator state directory (pass it to subprocesses as
  ``HCS_SANDBOX_SIMULATOR=<dir>``);
- ``simulator``: the process's :class:`hcs_sandbox.sim.core.Simulator`, reset for this test;
- ``allow_sim_leaks``: request it in a test that leaks on purpose;
- ``simulated_calls``: every export called through the simulator so far in this session;
- ``sigint_reaches_children``: request it in a test that sends SIGINT to a process it starts.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def sim_state_dir(tmp_path: Path) -> Path:
    path = tmp_path / "hcs-sim-state"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture
def allow_sim_leaks() -> bool:
    return True


@pytest.fixture
def sigint_reaches_children() -> Iterator[None]:
    """Processes started during the test get SIGINT's default action, even when this one
    ignores SIGINT: a shell without job control starts a background job (``pytest ... &``,
    ``nohup pytest ... &``) with SIGINT ignored, and ``exec`` passes an ignored signal on, so a
    child's ``send_signal(SIGINT)`` did nothing (exit 0, or a hang) while the same test passed
    in the foreground.  A Python handler is not passed on: the child starts with SIGINT's
    default action and Python installs ``default_int_handler`` as usual.  Meanwhile a SIGINT
    sent to this process interrupts it, as in a foreground run."""
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        yield
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


_CALLED: set[str] = set()


@pytest.fixture
def simulated_calls() -> set[str]:
    """The names of the exports called through the in-process simulator so far."""
    return _CALLED


@pytest.fixture(autouse=True)
def _hcs_simulator_guard(request: pytest.FixtureRequest, sim_state_dir: Path) -> Iterator[None]:
    from hcs_sandbox import sim as sim_package
    from hcs_sandbox.native.loader import reset_backend, use_simulator

    existing = sim_package.current_simulator()
    if existing is not None:
        existing.reset()
        existing.set_state_dir(str(sim_state_dir))
    use_simulator(sim_state_dir)
    try:
        yield
    finally:
        simulator = sim_package.current_simulator()
        problems: list[str] = []
        if simulator is not None and simulator.used:
            _CALLED.update(simulator.calls())
            leaks = _settled_leaks(simulator)
            problems = [f"leaked {count} x {kind}" for kind, count in sorted(leaks.items())]
            problems += [f"violation: {text}" for text in simulator.violations()]
            simulator.reset()
        reset_backend()
        if problems and "allow_sim_leaks" not in request.fixturenames:
            pytest.fail(
                "HCS simulator accounting after the test:\n  " + "\n  ".join(problems),
                pytrace=False,
            )


def _settled_leaks(simulator: Any) -> dict[str, int]:
    # Give worker threads that are finishing a completion a moment (no leak waits longer).
    deadline = time.monotonic() + 0.5
    leaks: dict[str, int] = simulator.leaks()
    while leaks and time.monotonic() < deadline:
        time.sleep(0.05)
        leaks = simulator.leaks()
    return leaks
