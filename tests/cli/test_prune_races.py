"""prune against other processes at work (review RV7b, F1 and F2).

F1: prune read HCS's systems, then the records: a create (or a persistent restart) that
finished in between had a ``created``/``running`` record and no system in prune's snapshot,
so prune removed a sandbox another process had just made (or marked a running one stopped).
F2: a persistent sandbox's restart killed mid-way left its record ``creating`` with a dead
owner, and prune removed it as half-made -- with its disk."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from cli_support import CliEnv, Result, cli_command

from hcs_sandbox.sandbox.store import open_store

Proc = Callable[..., Result]


def _state_of(state: Path, name: str) -> str | None:
    with open_store(state) as store:
        for record in store.list(all=True):
            if record.name == name:
                return record.state
    return None


def _wait_for_state(state: Path, name: str, wanted: str, limit: float = 20.0) -> None:
    deadline = time.monotonic() + limit
    while _state_of(state, name) != wanted:
        assert time.monotonic() < deadline, f"{name} never became {wanted}"
        time.sleep(0.02)


def _background(cli_env: CliEnv, latency: str, *argv: str) -> subprocess.Popen[str]:
    env = dict(cli_env.env, HCS_SANDBOX_SIM_LATENCY=latency)
    return subprocess.Popen(
        [*cli_command(), *argv],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_prune_leaves_a_create_that_finishes_during_its_scan_alone(
    cli_env: CliEnv, cli_proc: Proc
) -> None:
    # The create waits 2 s in HcnCreateEndpoint; prune reads HCS's systems at once, then
    # waits 3 s enumerating endpoints, and reads the records after the create finished.
    create = _background(
        cli_env, "HcnCreateEndpoint:2", "create", "--name", "race", "--network", "nat"
    )
    _wait_for_state(cli_env.state, "race", "creating")
    prune = _background(cli_env, "HcnEnumerateEndpoints:3", "prune", "-f", "--json")
    _out, err = create.communicate(timeout=60)
    assert create.returncode == 0, err
    pout, perr = prune.communicate(timeout=60)
    assert prune.returncode == 0, perr
    report = json.loads(pout)
    assert report["records"] == [], report
    assert _state_of(cli_env.state, "race") == "created"
    done = cli_proc("start", "race")
    assert done.code == 0, done.err
    assert cli_proc("rm", "-f", "race").code == 0


def test_a_persistent_start_killed_midway_is_stopped_again_with_its_disk(
    cli_env: CliEnv, cli_proc: Proc
) -> None:
    assert cli_proc("create", "--name", "p", "--persistent", "--network", "nat").code == 0
    assert cli_proc("start", "p").code == 0
    assert cli_proc("stop", "p").code == 0
    files = sorted(p for p in (cli_env.state / "sandboxes").rglob("*") if p.is_file())
    assert any(p.suffix == ".vhdx" for p in files)

    start = _background(cli_env, "HcsCreateComputeSystem:3", "start", "p")
    _wait_for_state(cli_env.state, "p", "creating")
    time.sleep(0.5)  # into the 3 s HcsCreateComputeSystem
    os.kill(start.pid, signal.SIGKILL)
    start.communicate(timeout=30)

    refused = cli_proc("start", "p")  # the owner is dead, prune has not run yet
    assert refused.code != 0
    assert "prune" in refused.err

    pruned = cli_proc("prune", "-f", "--json")
    assert pruned.code == 0, pruned.err
    report = json.loads(pruned.out)
    assert report["records"] == []
    assert [item.split(" ")[0] for item in report["marked_stopped"]] == ["p"]
    assert _state_of(cli_env.state, "p") == "stopped"
    assert all(p.exists() for p in files), "prune deleted the persistent sandbox's files"

    again = cli_proc("start", "p")
    assert again.code == 0, again.err
    assert _state_of(cli_env.state, "p") == "running"
    assert cli_proc("rm", "-f", "p").code == 0
    assert cli_proc("prune", "-f", "--json").json()["systems"] == []
