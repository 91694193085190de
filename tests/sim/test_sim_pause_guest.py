"""A paused system's guest processes make no progress: no output, no exit, their sleeps
stand still, until the system is resumed (on Hyper-V a paused VM runs no guest code), also
when another process pauses it (QA session 17, agent F9)."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from simapi import Api

from hcs_sandbox.sandbox.sandbox import Sandbox
from hcs_sandbox.sandbox.spec import SandboxSpec

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="guest pipes use select()")


def _read_for(fd: int, seconds: float) -> bytes:
    """What arrives on ``fd`` within ``seconds`` (b"" at end of output)."""
    data = b""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            break
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
    return data


def _read_until(fd: int, needle: bytes, seconds: float = 10.0) -> bytes:
    data = b""
    deadline = time.monotonic() + seconds
    while needle not in data:
        assert time.monotonic() < deadline, data
        data += _read_for(fd, 0.05)
    return data


def test_a_paused_systems_guest_makes_no_progress_until_resumed(api: Api) -> None:
    handle = api.running("paused-guest")
    try:
        # 3 replies, 1 s apart: 2 s of guest time in all.
        process = api.spawn(handle, "ping -n 3 x", CreateStdInPipe=False)
        assert process.hr == 0, process.doc
        assert process.stdout is not None
        out = _read_until(process.stdout, b"Reply")
        hr, doc = api.call("HcsPauseComputeSystem", handle, None)
        assert hr == 0, doc
        out += _read_for(process.stdout, 2.5)  # longer than the whole ping
        assert out.count(b"Reply") == 1, out
        assert not process.status()["Exited"]
        resumed = time.monotonic()
        hr, doc = api.call("HcsResumeComputeSystem", handle, None)
        assert hr == 0, doc
        out += process.communicate()[0]
        assert process.wait_exit() == 0
        # The ~2 s of guest time it still had to go ran after the resume.
        assert time.monotonic() - resumed >= 1.5
        assert out.count(b"Reply") == 3, out
        process.close()
    finally:
        api.call("HcsTerminateComputeSystem", handle, None)
        api.close(handle)


def test_a_process_that_ends_while_paused_exits_when_resumed(api: Api) -> None:
    handle = api.running("paused-exit")
    try:
        process = api.spawn(handle, "timeout /t 1", CreateStdInPipe=False)
        assert process.hr == 0, process.doc
        assert process.stdout is not None
        _read_until(process.stdout, b"Waiting")
        hr, doc = api.call("HcsPauseComputeSystem", handle, None)
        assert hr == 0, doc
        time.sleep(1.5)  # its 1 s would have passed
        assert not process.status()["Exited"]
        hr, doc = api.call("HcsResumeComputeSystem", handle, None)
        assert hr == 0, doc
        assert process.wait_exit() == 0
        process.communicate()
        process.close()
    finally:
        api.call("HcsTerminateComputeSystem", handle, None)
        api.close(handle)


def test_terminating_a_paused_system_ends_its_guest_processes(api: Api) -> None:
    handle = api.running("paused-kill")
    try:
        process = api.spawn(handle, "timeout /t -1", CreateStdInPipe=False)
        assert process.hr == 0, process.doc
        hr, doc = api.call("HcsPauseComputeSystem", handle, None)
        assert hr == 0, doc
        hr, doc = api.call("HcsTerminateComputeSystem", handle, None)
        assert hr == 0, doc
        assert process.wait_exit(timeout=5.0) == 1
        process.communicate()
        process.close()
    finally:
        api.close(handle)


def test_a_pause_made_by_another_process_stops_the_guest(
    sim_state_dir: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    env = {
        **os.environ,
        "HCS_SANDBOX_SIMULATOR": str(sim_state_dir),
        "HCS_SANDBOX_STATE_DIR": str(state),
    }
    cli = [sys.executable, "-m", "hcs_sandbox"]
    with Sandbox.run(SandboxSpec(), state_dir=state) as sb:
        result: dict[str, object] = {}

        def run() -> None:
            started = time.monotonic()
            result["exit"] = sb.exec("ping -n 3 x", timeout=30).exit_code
            result["took"] = time.monotonic() - started

        thread = threading.Thread(target=run)
        thread.start()
        time.sleep(0.3)
        paused = subprocess.run(
            [*cli, "pause", sb.id], check=False, env=env, capture_output=True, timeout=60
        )
        assert paused.returncode == 0, paused.stderr
        paused_at = time.monotonic()
        time.sleep(3.0)  # longer than the whole ping
        assert thread.is_alive()
        resumed = subprocess.run(
            [*cli, "resume", sb.id], check=False, env=env, capture_output=True, timeout=60
        )
        assert resumed.returncode == 0, resumed.stderr
        resumed_at = time.monotonic()
        thread.join(30)
        assert result["exit"] == 0
        # ping's 2 s of guest time, plus the pause less the watcher's delay (<~0.5 s) in
        # seeing it: far more than the 2 s it takes unpaused.
        assert float(result["took"]) >= 2.0 + (resumed_at - paused_at) - 1.0  # type: ignore[arg-type]
