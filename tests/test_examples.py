"""The files under examples/ that the README and --help name work as written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_help_example_wsb_plans_with_its_devices_off() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "hcs_sandbox", "plan", "examples/hello.wsb", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    spec = json.loads(done.stdout)["spec"]
    assert spec["network"] == "none"
    assert not any(spec[d] for d in ("gpu", "clipboard", "audio_input", "video_input"))
    assert [f["read_only"] for f in spec["mapped_folders"]] == [True]
    assert "examples/hello.wsb" in (ROOT / "src/hcs_sandbox/cli/main.py").read_text()
