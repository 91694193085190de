"""hcs_sandbox.sim: an HCS simulator exporting the same C functions as the Windows DLLs.

Nothing happens at import time.  :func:`get_simulator` creates the process's simulator on first
use; the native loader's simulator backend (:class:`hcs_sandbox.sim.backend.SimulatorBackend`)
points it at the chosen state directory.  See docs/simulator.md.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hcs_sandbox.sim.core import Simulator

__all__ = ["current_simulator", "get_simulator"]

_simulator: Simulator | None = None
_lock = threading.Lock()


def get_simulator() -> Simulator:
    """The process's :class:`~hcs_sandbox.sim.core.Simulator`, created on first call."""
    global _simulator
    sim = _simulator
    if sim is None:
        with _lock:
            if _simulator is None:
                from hcs_sandbox.sim.core import Simulator

                _simulator = Simulator()
            sim = _simulator
    return sim


def current_simulator() -> Simulator | None:
    """The process's simulator if one was created, else None (does not create one)."""
    return _simulator
