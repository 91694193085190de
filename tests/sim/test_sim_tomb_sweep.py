"""Exit statuses of stopped systems (``systems/`` records) do not pile up: one that no
handle can ask for any more (every process that held a handle when the system stopped has
ended; a stopped system cannot be opened again) is deleted by a sweep that stops start at
most once a minute; one a live handle may still ask for is kept (QA session 17, tester F10)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from simapi import Api

from hcs_sandbox.sim.core import Simulator

CHILD = """
import sys
sys.path.insert(0, {tests!r})
from hcs_sandbox.native.loader import use_simulator
use_simulator({state!r})
from simapi import Api
api = Api()
handle = api.running("gone-vm")
hr, doc = api.call("HcsTerminateComputeSystem", handle, None)
assert hr == 0, doc
api.close(handle)
"""


def _stopped_elsewhere(sim_state_dir: Path) -> Path:
    """A system started and terminated by a process that has ended; its record file."""
    code = CHILD.format(tests=str(Path(__file__).parent), state=str(sim_state_dir))
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    [path] = [p for p in (sim_state_dir / "systems").iterdir() if "gone-vm" in p.name]
    return path


def test_an_exit_status_nobody_can_ask_for_is_swept(
    api: Api, sim: Simulator, sim_state_dir: Path
) -> None:
    path = _stopped_elsewhere(sim_state_dir)
    mine = api.running("kept-vm")
    hr, doc = api.call("HcsTerminateComputeSystem", mine, None)
    assert hr == 0, doc
    # An exit status from an earlier version (it does not say who held handles): kept.
    old = sim_state_dir / "systems" / "old-vm.json"
    sim.store.write("systems", "old-vm", {"Id": "old-vm", "RuntimeId": "r", "State": "Stopped"})
    assert old.exists()
    assert sim.sweep_stopped() == 1
    assert not path.exists()
    assert old.exists()
    # This process still holds a handle: its exit status is kept, and the handle sees it.
    hr, doc = api.call("HcsGetComputeSystemProperties", mine, None)
    assert hr == 0, doc
    assert json.loads(doc or "{}")["State"] == "Stopped"
    api.close(mine)


def test_stops_start_the_sweep_in_the_background(
    api: Api, sim: Simulator, sim_state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _stopped_elsewhere(sim_state_dir)
    monkeypatch.setattr(sim, "TOMB_SWEEP_INTERVAL", 0.0)
    monkeypatch.setattr(sim, "_next_tomb_check", 0.0)
    handle = api.running("trigger-vm")
    hr, doc = api.call("HcsTerminateComputeSystem", handle, None)
    assert hr == 0, doc
    api.close(handle)
    deadline = time.monotonic() + 10
    while path.exists():
        assert time.monotonic() < deadline, "the sweep never ran"
        time.sleep(0.05)
    assert (sim_state_dir / "systems.swept").exists()


def test_the_sweep_waits_for_the_interval(
    api: Api, sim: Simulator, sim_state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _stopped_elsewhere(sim_state_dir)
    (sim_state_dir / "systems.swept").touch()  # another process swept a moment ago
    monkeypatch.setattr(sim, "_next_tomb_check", 0.0)
    handle = api.running("early-vm")
    hr, doc = api.call("HcsTerminateComputeSystem", handle, None)
    assert hr == 0, doc
    api.close(handle)
    time.sleep(0.5)
    assert path.exists()
    assert os.stat(sim_state_dir / "systems.swept").st_mtime > time.time() - 60
