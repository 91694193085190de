"""Ctrl+C while the CLI waits in a slow HCS call (the simulator with latency): exit 130, no
traceback, nothing left once pruned -- the real DLLs only delay the Ctrl+C until the call
returns, and so does the simulator (docs/simulator.md, "Signals"; review RV7a finding 3)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable

import pytest
from cli_support import CliEnv, Result, cli_command, wait_for

Cli = Callable[..., Result]

pytestmark = [
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX SIGINT"),
    pytest.mark.usefixtures("sigint_reaches_children"),
]


def _record_state(name: str) -> str | None:
    """The record's state, from the store only (no HCS handle is opened here)."""
    from hcs_sandbox.sandbox.sandbox import Sandbox

    return {sb.name: sb.record.state for sb in Sandbox.list(all=True)}.get(name)


def _live_systems() -> list[dict[str, object]]:
    from hcs_sandbox.hcs.system import enumerate_compute_systems

    return enumerate_compute_systems({"Owners": ["hcs-sandbox"]})


@pytest.mark.parametrize(
    ("argv", "latency"),
    [
        (["run", "--name", "si", "--", "cmd", "/c", "echo", "hi"], "HcsStartComputeSystem:2"),
        (["run", "--rm", "--name", "si"], "HcsStartComputeSystem:2"),
        (
            ["run", "--rm", "--network", "nat", "--name", "si", "--", "cmd", "/c", "echo", "hi"],
            "*:0.5",
        ),
    ],
    ids=["run-command", "run-rm", "run-rm-nat-every-call-slow"],
)
def test_ctrl_c_during_a_slow_hcs_call(
    cli_env: CliEnv, cli: Cli, argv: list[str], latency: str
) -> None:
    env = dict(cli_env.env)
    env["HCS_SANDBOX_SIM_LATENCY"] = latency
    proc = subprocess.Popen(
        [*cli_command(), *argv],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # "created": HcsCreateComputeSystem is done, HcsStartComputeSystem (slow) is next.
        wait_for(lambda: _record_state("si") == "created" or proc.poll() is not None)
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, (out, err)
    assert "Exception ignored" not in err, err
    assert "Traceback" not in err, err
    assert "hi" not in out  # the command never ran
    pruned = cli("prune", "-f")
    assert pruned.code == 0, pruned.err
    assert cli("ls", "-a", "-q").out.strip() == ""
    wait_for(lambda: _live_systems() == [], timeout=10)
