"""HCS_SANDBOX_SIMULATOR: one reading everywhere (hcs_sandbox._simenv).  "0" used to ask for
the simulator, with its state in a directory named "0" under the current directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hcs_sandbox import _simenv
from hcs_sandbox.cli import output
from hcs_sandbox.native import loader
from hcs_sandbox.sandbox import doctor


@pytest.mark.parametrize("value", ["", "  ", "0", "false", "No", "OFF"])
def test_off_words_do_not_ask_for_the_simulator(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(_simenv.ENV_SIMULATOR, value)
    loader.reset_backend()
    assert _simenv.setting() is None
    assert not _simenv.asked()
    assert not loader.simulator_requested()
    assert not output.is_simulated()
    assert not doctor.backend_is_simulated()


@pytest.mark.parametrize("value", ["1", "true", "YES", "on"])
def test_on_words_ask_for_the_default_directory(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(_simenv.ENV_SIMULATOR, value)
    loader.reset_backend()
    assert _simenv.setting() == ""
    assert loader.simulator_requested()
    assert output.is_simulated()
    assert doctor.backend_is_simulated()
    assert loader._simulator_state_dir() is None  # the simulator's default


def test_an_absolute_directory_is_the_state_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(_simenv.ENV_SIMULATOR, str(tmp_path))
    loader.reset_backend()
    assert loader._simulator_state_dir() == str(tmp_path)


@pytest.mark.parametrize("value", ["sim", "./state", "2"])
def test_anything_else_is_refused_with_a_remedy(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(_simenv.ENV_SIMULATOR, value)
    loader.reset_backend()
    assert _simenv.asked()  # asked, so that the backend says what is wrong
    with pytest.raises(loader.NativeUnavailable) as caught:
        loader._simulator_state_dir()
    assert "absolute directory" in str(caught.value)
    assert "=1" in (caught.value.remedy or "")


def test_cli_with_0_is_not_the_simulator_and_with_a_relative_dir_says_so(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HCS_SANDBOX_")}
    env["HCS_SANDBOX_STATE_DIR"] = str(tmp_path / "state")
    run = [sys.executable, "-m", "hcs_sandbox", "ls", "-a", "--json"]
    env["HCS_SANDBOX_SIMULATOR"] = "0"
    off = subprocess.run(
        run, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    assert "note: simulated" not in off.stderr
    assert '"simulated"' not in off.stdout
    if sys.platform != "win32":  # no HCS and no simulator: ls says so (exit 3, RV16)
        assert off.returncode == 3, off.stderr
        assert "HCS unavailable" in off.stderr
    assert not (tmp_path / "0").exists()
    env["HCS_SANDBOX_SIMULATOR"] = "sim"
    bad = subprocess.run(
        [sys.executable, "-m", "hcs_sandbox", "run", "--rm", "--", "cmd", "/c", "echo", "x"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 3, bad.stderr
    assert "absolute directory" in bad.stderr
    assert "Traceback" not in bad.stderr
    assert not (tmp_path / "sim").exists()
