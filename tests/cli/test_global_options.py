"""Global options: --simulator with --state-dir keeps the simulated host beside the records."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("HCS_SANDBOX_")}


def test_simulator_lives_in_the_given_state_dir(tmp_path: Path) -> None:
    state = tmp_path / "state"
    base = [sys.executable, "-m", "hcs_sandbox", "--simulator", "--state-dir", str(state)]
    env = _clean_env()
    made = subprocess.run(
        [*base, "run", "-d", "--name", "g1"], env=env, capture_output=True, text=True, check=False
    )
    assert made.returncode == 0, made.stderr
    assert (state / "simulator").is_dir()
    assert (state / "state.db").is_file()
    listed = subprocess.run(
        [*base, "ls", "-q"], env=env, capture_output=True, text=True, check=False
    )
    assert listed.returncode == 0, listed.stderr
    assert made.stdout.strip()[:12] in listed.stdout
    removed = subprocess.run(
        [*base, "rm", "-f", "g1"], env=env, capture_output=True, text=True, check=False
    )
    assert removed.returncode == 0, removed.stderr
    assert "simulated" in removed.stderr


def test_without_simulator_off_windows_hcs_is_unavailable(tmp_path: Path) -> None:
    if sys.platform == "win32":  # pragma: no cover - this checks the non-Windows message
        return
    env = _clean_env()
    done = subprocess.run(
        [sys.executable, "-m", "hcs_sandbox", "--state-dir", str(tmp_path), "run", "-d"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 3
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "HCS unavailable" in lines[0]
    assert "--simulator" in lines[0]
    assert "Traceback" not in done.stderr
